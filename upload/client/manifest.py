"""The bulk upload's CSV manifest (seed 002, "Relabeling via CSV Manifest").

Download: one row per queued session. The columns on the left describe the session and must come back
unchanged; the three on the right, "XNAT Subject ID", "Session Label" and "PET Tracer", may be edited. A
row deleted from the file removes that session from the queue. Any edit to another column, an unknown or
repeated session, a missing column, a bad label or a tracer that is not offered refuses the whole file with
a message naming the row and column; nothing changes then.
"""
from __future__ import annotations

import csv
import io
import re
from typing import Any, Iterable

from django.core.exceptions import ValidationError

FIXED = ("Upload ID", "Study Date", "Modalities", "Scans", "Files", "Series Descriptions")
EDITABLE = ("XNAT Subject ID", "Session Label", "PET Tracer")
COLUMNS = FIXED + EDITABLE
LABEL_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BYTES = 2 * 1024 * 1024

MSG_EMPTY = "The CSV file is empty."
MSG_TOO_BIG = "The CSV file is too large."
MSG_NOT_TEXT = "The CSV file is not UTF-8 text."
MSG_MISSING_COLUMNS = "The CSV file lacks the column(s) {columns}; download it again and edit only the last three."
MSG_UNKNOWN_SESSION = "Row {row}: there is no queued session {key!r} in this upload."
MSG_DUPLICATE = "Row {row}: session {key!r} appears more than once."
MSG_FIXED_EDIT = ("Row {row}: the column {column!r} was changed. Only \"XNAT Subject ID\", \"Session Label\" and "
                  "\"PET Tracer\" can be edited.")
MSG_BAD_LABEL = "Row {row}: {column} {value!r} may only hold letters, digits, '_' and '-' (at most 64)."
MSG_TRACER_NOT_PET = "Row {row}: a PET tracer is only used for sessions with PET scans."
MSG_BAD_TRACER = "Row {row}: {value!r} is not one of this project's PET tracers ({tracers})."
MSG_NO_ROWS = "The CSV file has no session rows left; nothing would be uploaded."


def _fixed_values(session: dict[str, Any]) -> dict[str, str]:
    descriptions = sorted({s["description"] for s in session["scans"] if s["description"]})
    return {
        "Upload ID": session["key"], "Study Date": session.get("study_date", ""),
        "Modalities": " ".join(session.get("modalities", [])), "Scans": str(len(session["scans"])),
        "Files": str(session["files"]), "Series Descriptions": "; ".join(descriptions),
    }


def manifest_csv_build(*, sessions: Iterable[dict[str, Any]], rows: dict[str, dict[str, str]],
                       hide_dates: bool = False) -> str:
    """The CSV text for ``sessions`` (inspection entries) with the current editable ``rows`` by key."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for session in sessions:
        row = rows.get(session["key"])
        if row is None:
            continue
        fixed = _fixed_values(session)
        if hide_dates:
            fixed["Study Date"] = ""
        writer.writerow([fixed[c] for c in FIXED] + [row.get("subject", ""), row.get("label", ""),
                                                      row.get("tracer", "")])
    return out.getvalue()


def manifest_csv_apply(*, sessions: Iterable[dict[str, Any]], data: bytes | str, tracers: list[str],
                       hide_dates: bool = False) -> dict[str, dict[str, str]]:
    """Validate an edited CSV against the inspection; returns {key: {subject, label, tracer}} for the rows
    kept (order of the file). Raises ValidationError with a message for the user."""
    if isinstance(data, bytes):
        if len(data) > MAX_BYTES:
            raise ValidationError(MSG_TOO_BIG)
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ValidationError(MSG_NOT_TEXT) from None
    if not data.strip():
        raise ValidationError(MSG_EMPTY)
    by_key = {s["key"]: s for s in sessions}
    reader = csv.reader(io.StringIO(data))
    header = [h.strip() for h in next(reader, [])]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValidationError(MSG_MISSING_COLUMNS.format(columns=", ".join(f'"{c}"' for c in missing)))
    index = {c: header.index(c) for c in COLUMNS}
    result: dict[str, dict[str, str]] = {}
    for line_no, values in enumerate(reader, start=2):
        if not any(v.strip() for v in values):
            continue
        cell = {c: (values[i].strip() if i < len(values) else "") for c, i in index.items()}
        key = cell["Upload ID"]
        session = by_key.get(key)
        if session is None:
            raise ValidationError(MSG_UNKNOWN_SESSION.format(row=line_no, key=key))
        if key in result:
            raise ValidationError(MSG_DUPLICATE.format(row=line_no, key=key))
        fixed = _fixed_values(session)
        if hide_dates:
            fixed["Study Date"] = ""
        for column in FIXED:
            if cell[column] != fixed[column]:
                raise ValidationError(MSG_FIXED_EDIT.format(row=line_no, column=column))
        subject, label, tracer = cell["XNAT Subject ID"], cell["Session Label"], cell["PET Tracer"]
        for column, value in (("XNAT Subject ID", subject), ("Session Label", label)):
            if value and not LABEL_RE.match(value):
                raise ValidationError(MSG_BAD_LABEL.format(row=line_no, column=column, value=value[:80]))
        if tracer:
            if not session.get("is_pet"):
                raise ValidationError(MSG_TRACER_NOT_PET.format(row=line_no))
            if tracer not in tracers:
                raise ValidationError(MSG_BAD_TRACER.format(row=line_no, value=tracer[:80],
                                                            tracers=", ".join(tracers) or "none"))
        result[key] = {"subject": subject, "label": label, "tracer": tracer}
    if not result:
        raise ValidationError(MSG_NO_ROWS)
    return result
