"""Archive validation: XNAT's conflict codes (reference/xnat.md §7, PrearcSessionValidator).

A *conflict* can be resolved by the overwrite mode the reviewer chooses; a *fail* cannot. The table below is
what xnatlite does (XNAT lets the overwrite flag override conflicts the same way):

    code  meaning                                          none       append            delete
    1     a session with this label exists in the project  conflict   merge             replace
    2     this study is archived here under another label  conflict   archive anyway    archive anyway
    3     this study is archived in another project        conflict   archive anyway    archive anyway
    4     the label exists for another subject             fail       fail              fail
    5     the existing session has another StudyInstanceUID conflict  conflict          replace
    6     no destination project                           fail       fail              fail
    8     no session label / subject                       fail       fail              fail
    16    scan with the same number and UID exists         conflict   files merged      replace
    17    scan with the same number, different UID         conflict   renamed {id}_1    replace
    18    scan with the same UID, different number         conflict   conflict          replace
    19    the existing session has another modality        fail       fail              replace
Messages carry labels and scan numbers only, never PHI.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Min

from prearchive.models import PrearchiveFile
from xnatlite.models import ImageSession

OVERWRITE_MODES = ("none", "append", "delete")

PRE_EXISTS = "Session already exists, retry with overwrite enabled"
SUBJECT_MOD = "Invalid modification of session subject via archive process."
PROJ_MOD = "Invalid modification of session project via archive process."
LABEL_MOD = "Invalid modification of session label via archive process."
UID_MOD = "Invalid modification of session UID via archive process."
MODALITY_MOD = "Invalid modification of session modality via archive process.  Data may require a manual merge."


@dataclass(frozen=True)
class Notice:
    code: int
    kind: str  # "conflict" or "fail"
    message: str

    def __str__(self) -> str:
        return f"{self.kind.upper()}-{self.code}: {self.message}"


@dataclass(frozen=True)
class ScanKey:
    scan_id: str
    uid: str


def overwrite_normalize(value: str | None) -> str:
    """XNAT: ``append`` or ``delete``; anything else means no overwrite."""
    value = (value or "").strip().lower()
    return value if value in ("append", "delete") else "none"


def session_conflicts(*, project_id: str | None, subject: str, label: str, study_uid: str, session_type: str,
                      scans: list[ScanKey], overwrite: str) -> list[Notice]:
    """Every notice that stops this archive under ``overwrite`` (empty: go ahead)."""
    overwrite = overwrite_normalize(overwrite)
    notices: list[Notice] = []
    if not project_id:
        return [Notice(6, "fail", "unable to identify destination project")]
    if not label:
        notices.append(Notice(8, "fail", "unable to deduce session label"))
    if not subject:
        notices.append(Notice(8, "fail", "Unable to identify subject."))
    if notices:
        return notices
    existing = (ImageSession.objects.filter(project_id=project_id, label=label)
                .select_related("subject").prefetch_related("scans").first())
    if existing is None:
        if overwrite == "none" and study_uid:
            other = ImageSession.objects.filter(study_instance_uid=study_uid)
            here = other.filter(project_id=project_id).values_list("label", flat=True).first()
            if here:
                notices.append(Notice(2, "conflict", f"{LABEL_MOD}: this study is archived as {here}"))
            elif other.exclude(project_id=project_id).exists():
                notices.append(Notice(3, "conflict", f"{PROJ_MOD}: this study is archived in another project"))
        return notices

    if existing.subject.label != subject:
        notices.append(Notice(4, "fail", f"{SUBJECT_MOD}: {label} Already Exists for another Subject"))
    if overwrite == "none":
        notices.append(Notice(1, "conflict", PRE_EXISTS))
    if existing.study_instance_uid and study_uid and existing.study_instance_uid != study_uid \
            and overwrite != "delete":
        notices.append(Notice(5, "conflict", UID_MOD))
    if existing.session_type and session_type and existing.session_type != session_type and overwrite != "delete":
        notices.append(Notice(19, "fail", MODALITY_MOD))
    if overwrite == "delete":
        return notices
    by_id = {s.scan_id: s.series_instance_uid for s in existing.scans.all()}
    by_uid = {s.series_instance_uid: s.scan_id for s in existing.scans.all() if s.series_instance_uid}
    for scan in scans:
        match = by_id.get(scan.scan_id)
        if match is not None:
            if match == scan.uid:
                if overwrite == "none":
                    notices.append(Notice(16, "conflict",
                                          f"Session already contains a scan ({scan.scan_id}) with the same UID and number."))
            elif overwrite == "none":
                notices.append(Notice(17, "conflict", f"Session already contains a scan ({scan.scan_id}) with the "
                                                      f"same number, but a different UID. - New scan will be renamed "
                                                      f"to {scan.scan_id}_1."))
        other_id = by_uid.get(scan.uid) if scan.uid else None
        if other_id is not None and other_id != scan.scan_id:
            notices.append(Notice(18, "conflict",
                                  f"Session already contains a scan ({other_id}) with the same UID, but a different number."))
    return notices


def _next_free(scan_id: str, used: set[str]) -> str:
    n = 1
    while f"{scan_id}_{n}" in used:
        n += 1
    return f"{scan_id}_{n}"


def series_scan_ids(*, session_id: int) -> dict[tuple[str, str], str]:
    """The scan ID of each series of a prearchive session: {(scan folder, SeriesInstanceUID): scan ID}.

    A scan folder is the SeriesNumber (reference/xnat.md §7), so two series sharing a number share a folder.
    They stay two scans: the series received first keeps the number, each later one gets XNAT's rename for
    code 17, ``{number}_1`` (``_2`` ...), skipping IDs the session already uses. Files without a
    SeriesInstanceUID belong to the folder's first series. One grouped query, no file read."""
    rows = (PrearchiveFile.objects.filter(session_id=session_id).order_by()
            .values("scan_id", "series_instance_uid").annotate(first=Min("pk")))
    by_folder: dict[str, list[tuple[int, str]]] = {}
    for row in rows:
        by_folder.setdefault(row["scan_id"], []).append((row["first"], row["series_instance_uid"] or ""))
    used = set(by_folder)
    ids: dict[tuple[str, str], str] = {}
    for folder in sorted(by_folder):
        series = sorted(by_folder[folder])
        named = [uid for _first, uid in series if uid]
        for uid in named[1:]:
            ids[(folder, uid)] = new_id = _next_free(folder, used)
            used.add(new_id)
        for _first, uid in series:
            ids.setdefault((folder, uid), folder)
    return ids


def scan_renames(*, project_id: str, label: str, scans: list[ScanKey]) -> dict[str, str]:
    """For append: new scans whose number is taken by a different series get ``{id}_1`` (``_2`` ...)."""
    existing = ImageSession.objects.filter(project_id=project_id, label=label).first()
    if existing is None:
        return {}
    taken = dict(existing.scans.values_list("scan_id", "series_instance_uid"))
    renames: dict[str, str] = {}
    used = set(taken) | {scan.scan_id for scan in scans}
    for scan in scans:
        if scan.scan_id in taken and taken[scan.scan_id] != scan.uid:
            renames[scan.scan_id] = _next_free(scan.scan_id, used)
            used.add(renames[scan.scan_id])
    return renames
