"""Plain words for the prearchive's statuses and conflict codes, for the review pages and their JSON.

XNAT's status names stay the contract (REST, filters); people read these sentences instead."""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from prearchive.models import PrearchiveSession

Status = PrearchiveSession.Status

# status -> (short words, what it means)
STATUS_WORDS: dict[str, tuple[str, str]] = {
    Status.RECEIVING: ("Receiving files", "Files are arriving. The session is built once no file has come for the "
                       "Session Idle Time."),
    Status.RECEIVING_INTERRUPT: ("Receiving (job interrupted)", "New files arrived while a job ran on the session: "
                                 "it is receiving again and will be built anew."),
    Status.QUEUED_BUILDING: ("Waiting to be built", "The session stopped receiving and waits for a worker to build it."),
    Status.BUILDING: ("Being built", "A worker is grouping the files into scans."),
    Status.READY: ("Ready to archive", "Built and waiting for review: archive, move or delete it."),
    Status.CONFLICT: ("Conflict with the archive", "The archive already holds something that clashes with this "
                      "session: see what happened and choose how to resolve it."),
    Status.ERROR: ("Error", "Something went wrong; the files are kept. See the message, then rebuild or delete."),
    Status.QUEUED_ARCHIVING: ("Waiting to be archived", "Archiving was requested and waits for a worker."),
    Status.ARCHIVING: ("Being archived", "A worker is copying the session into the archive."),
    Status.QUEUED_MOVING: ("Waiting to be moved", "A move to another project waits for a worker."),
    Status.MOVING: ("Being moved", "A worker is moving the session to another project."),
    Status.QUEUED_DELETING: ("Waiting to be deleted", "Deletion was requested and waits for a worker."),
    Status.DELETING: ("Being deleted", "A worker is removing the session and its files."),
    Status.QUEUED_SEPARATING: ("Waiting to be separated", "A PET-MR session waits to be split into PET and MR."),
    Status.SEPARATING: ("Being separated", "A worker is splitting the PET-MR session into PET and MR sessions."),
}

# conflict code -> (what happened, resolutions offered: "append", "label", "overwrite")
CONFLICT_WORDS: dict[int, tuple[str, tuple[str, ...]]] = {
    1: ("A session with this label is already archived in the project.", ("append", "label", "overwrite")),
    2: ("This study is already archived in this project under another label.", ("append", "overwrite", "label")),
    3: ("This study is already archived in another project.", ("append", "overwrite", "label")),
    4: ("The label is already used by a session of another subject.", ("label",)),
    5: ("The archived session with this label holds a different study.", ("label", "overwrite")),
    6: ("The session has no destination project.", ()),
    8: ("The session has no label or no subject.", ("label",)),
    16: ("A scan with the same number and series is already archived in the session.", ("append", "overwrite")),
    17: ("A scan with the same number but another series is already archived in the session.",
         ("append", "overwrite", "label")),
    18: ("This series is already archived in the session under another scan number.", ("overwrite", "label")),
    19: ("The archived session has another modality.", ("overwrite", "label")),
}

RESOLUTIONS = {
    "append": ("Append to the archived session", "append"),
    "label": ("Archive under a new label", "none"),
    "overwrite": ("Overwrite the archived session", "delete"),
}

_CODE = re.compile(r"\b(CONFLICT|FAIL)-(\d+)\b")


def status_words(status: str) -> str:
    return STATUS_WORDS.get(status, (status, ""))[0]


def legend() -> list[tuple[str, str, str]]:
    """(status, words, meaning) for every status, in the order of the TextChoices."""
    return [(s, *STATUS_WORDS.get(s, (s, ""))) for s in Status.values]


def conflict_explain(message: str) -> dict:
    """What happened (one sentence per code found in the session's message) and the resolutions that apply,
    as (label, overwrite mode, key)."""
    codes = [int(c) for _, c in _CODE.findall(message or "")]
    happened = [CONFLICT_WORDS[c][0] for c in codes if c in CONFLICT_WORDS]
    keys: list[str] = []
    for c in codes:
        for key in CONFLICT_WORDS.get(c, ("", ()))[1]:
            if key not in keys:
                keys.append(key)
    if codes and not keys and not happened:
        keys = ["label"]
    return {"happened": happened, "resolutions": [(*RESOLUTIONS[k], k) for k in keys]}


def build_expected_at(session: PrearchiveSession, idle_seconds: float) -> datetime | None:
    """When a RECEIVING session will be built if no more files come (None: it waits for its uploader)."""
    if session.status != Status.RECEIVING or session.prevent_auto_commit or session.source == "uploader":
        return None
    return session.lastmod + timedelta(seconds=idle_seconds)
