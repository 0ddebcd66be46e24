"""Reload the prearchive database from the file tree (XNAT's reloadPrearcDatabaseOnStartup / PUT /data/prearchive).

Reconciles rows and folders:
- a row whose folder is gone is deleted (nothing left to review);
- a folder with no row gets one, rebuilt from the headers of its files (header-only reads);
- a row's file list is made to match the folder: files on disk without a row are added, rows without a
  file are dropped.
Rows that changed go back to RECEIVING so the idle checker rebuilds them; rows in an operation (building,
archiving, moving, deleting, separating) are left alone. Only logs UIDs and counts.

``session_files_adopt`` is the narrower step every job runs before it acts (builder, archive) and that
start-up recovery of the worker and the receiver runs for every session (``sessions_reconcile``): a file in
the session folder without a row (the receiver died between the file and its row's commit, so its sender was
never told Success) gets its row, read from its header; nothing is dropped or deleted.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.utils import timezone

from prearchive.models import PrearchiveFile, PrearchiveSession

from . import rowdoc, storage
from .headers import HeaderError, file_fields, header_read, label_chars, scan_dir, uid

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status

TIMESTAMP_RE = re.compile(r"^\d{8}_\d{6}(\d{3})?$")
BUSY = (Status.QUEUED_BUILDING, Status.BUILDING, Status.QUEUED_ARCHIVING, Status.ARCHIVING, Status.QUEUED_MOVING,
        Status.MOVING, Status.QUEUED_DELETING, Status.DELETING, Status.QUEUED_SEPARATING, Status.SEPARATING)


@dataclass
class ReloadReport:
    rows_removed: int = 0
    rows_created: int = 0
    files_added: int = 0
    files_dropped: int = 0
    unreadable: int = 0


def _session_folders(root: Path):
    """(project_id | None, timestamp, folder) for every session folder in the tree."""
    if not root.is_dir():
        return
    for top in sorted(root.iterdir()):
        if not top.is_dir() or top.name.startswith("."):
            continue
        if TIMESTAMP_RE.match(top.name):  # Unassigned: {root}/{timestamp}/{folder}
            for folder in sorted(p for p in top.iterdir() if p.is_dir() and not p.name.startswith(".")):
                yield None, top.name, folder.name
            continue
        for ts in sorted(p for p in top.iterdir() if p.is_dir() and TIMESTAMP_RE.match(p.name)):
            for folder in sorted(p for p in ts.iterdir() if p.is_dir() and not p.name.startswith(".")):
                yield top.name, ts.name, folder.name


def _disk_files(folder: Path) -> dict[str, Path]:
    scans = folder / "SCANS"
    if not scans.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p for p in scans.rglob("*")
            if p.is_file() and not p.name.startswith(".")}


def _file_row(session_id: int, path: Path, relative: str) -> PrearchiveFile | None:
    try:
        header = header_read(path)
        ds = header.dataset
        sop, study = uid(ds, "SOPInstanceUID"), uid(ds, "StudyInstanceUID")
        series = uid(ds, "SeriesInstanceUID")
    except (HeaderError, OSError):
        return None
    if not sop:
        return None
    fields = file_fields(ds)
    parts = relative.split("/")
    scan_id = parts[1] if len(parts) > 2 else scan_dir(fields["series_number"], series)
    return PrearchiveFile(session_id=session_id, sop_instance_uid=sop, study_instance_uid=study,
                          series_instance_uid=series, scan_id=scan_id, relative_path=relative,
                          size=header.size, received=timezone.now(), **fields)


def _sync_files(session: PrearchiveSession, folder: Path, report: ReloadReport) -> bool:
    on_disk = _disk_files(folder)
    known = dict(PrearchiveFile.objects.filter(session=session).values_list("relative_path", "pk"))
    missing_rows = [rel for rel in on_disk if rel not in known]
    gone = [pk for rel, pk in known.items() if rel not in on_disk]
    if gone:
        PrearchiveFile.objects.filter(pk__in=gone).delete()
        report.files_dropped += len(gone)
    new_rows = []
    seen = set(PrearchiveFile.objects.filter(session=session).values_list("sop_instance_uid", flat=True))
    for rel in missing_rows:
        row = _file_row(session.pk, on_disk[rel], rel)
        if row is None or row.sop_instance_uid in seen:
            report.unreadable += row is None
            continue
        seen.add(row.sop_instance_uid)
        new_rows.append(row)
    PrearchiveFile.objects.bulk_create(new_rows, batch_size=1000)
    report.files_added += len(new_rows)
    return bool(gone or new_rows)


@dataclass
class AdoptReport:
    adopted: int = 0
    unreadable: int = 0   # files without a row whose header cannot be read: left where they are
    superseded: int = 0   # older copies of an instance the session lists elsewhere (a replace cut short)


def session_files_adopt(*, session: PrearchiveSession) -> AdoptReport:
    """Rows for the files in ``session``'s folder that have none (see the module docstring). Cheap when
    there are none: one listing of the folder and one query of the rows' paths."""
    report = AdoptReport()
    on_disk = _disk_files(storage.session_dir(session.relative_dir))
    if not on_disk:
        return report
    known = set(PrearchiveFile.objects.filter(session=session).values_list("relative_path", flat=True))
    missing = [rel for rel in on_disk if rel not in known]
    if not missing:
        return report
    seen = set(PrearchiveFile.objects.filter(session=session).values_list("sop_instance_uid", flat=True))
    rows = []
    for rel in sorted(missing):
        row = _file_row(session.pk, on_disk[rel], rel)
        if row is None:
            report.unreadable += 1
        elif row.sop_instance_uid in seen:
            report.superseded += 1
        else:
            seen.add(row.sop_instance_uid)
            rows.append(row)
    # ignore_conflicts: a receiver still writing the same row (it then replaces this one) wins.
    PrearchiveFile.objects.bulk_create(rows, batch_size=1000, ignore_conflicts=True)
    report.adopted = len(rows)
    if report.adopted or report.unreadable:
        logger.warning("prearchive session %s: %d file(s) without a row adopted, %d unreadable left in place",
                       session.pk, report.adopted, report.unreadable)
    return report


TEMP_STALE_SECONDS = 60.0


def temporary_files_reap(folder: Path, *, older_than: float = TEMP_STALE_SECONDS) -> int:
    """Remove the temporary files (``.*.tmp``, storage.temp_name) a killed writer left in a session folder:
    a write takes far less than ``older_than`` seconds, so an older one has no live writer. Returns the count."""
    import time

    scans = folder / "SCANS"
    if not scans.is_dir():
        return 0
    removed = 0
    cutoff = time.time() - older_than
    for path in scans.rglob(".*.tmp"):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    if removed:
        logger.info("prearchive: %d stale temporary file(s) removed from a session folder", removed)
    return removed


RECONCILED = (Status.RECEIVING, Status.READY, Status.CONFLICT, Status.ERROR)


def sessions_reconcile() -> int:
    """Start-up recovery (worker and receiver): ``session_files_adopt`` for every session not in an
    operation (a job adopts for its own session when it resumes). A built session that gained files goes
    back to RECEIVING, so it is built again with them. Returns the number of files adopted."""
    from .idle import idle_countdown_on_commit

    total = 0
    for session in PrearchiveSession.objects.filter(status__in=RECONCILED).order_by("pk"):
        temporary_files_reap(storage.session_dir(session.relative_dir))
        with transaction.atomic():
            report = session_files_adopt(session=session)
            if report.adopted and session.status != Status.RECEIVING:
                if PrearchiveSession.objects.filter(pk=session.pk, status=session.status).update(
                        status=Status.RECEIVING, lastmod=timezone.now()):
                    idle_countdown_on_commit(session.pk)
        total += report.adopted
    if total:
        logger.info("start-up recovery: %d file(s) without a row adopted", total)
    return total


def prearchive_reload() -> ReloadReport:
    report = ReloadReport()
    root = storage.root()
    seen: set[tuple] = set()
    for project_id, timestamp, folder_name in _session_folders(root):
        from xnatlite.models import Project

        if project_id is not None and not Project.objects.filter(pk=project_id).exists():
            logger.warning("prearchive reload: folder of an unknown project left alone")
            continue
        seen.add((project_id, timestamp, folder_name))
        folder = root / (f"{project_id}/" if project_id else "") / timestamp / folder_name
        session = PrearchiveSession.objects.filter(project_id=project_id, timestamp=timestamp,
                                                   folder_name=folder_name).first()
        if session is not None and session.status in BUSY:
            continue
        with transaction.atomic():
            if session is None:
                session = _session_from_folder(project_id, timestamp, folder_name, folder)
                if session is None:
                    continue
                report.rows_created += 1
                restored = session.status in RESTING
            else:
                restored = False
            changed = _sync_files(session, folder, report)
            if restored and PrearchiveFile.objects.filter(session=session).count() == session.file_count:
                changed = False  # every file its document counted is there: the row is as it was
            if changed and session.status not in (Status.RECEIVING, Status.RECEIVING_INTERRUPT):
                PrearchiveSession.objects.filter(pk=session.pk, status=session.status).update(
                    status=Status.RECEIVING, lastmod=timezone.now())
    for session in PrearchiveSession.objects.exclude(status__in=BUSY).only(
            "pk", "project_id", "timestamp", "folder_name"):
        if (session.project_id, session.timestamp, session.folder_name) not in seen:
            PrearchiveSession.objects.filter(pk=session.pk).delete()
            report.rows_removed += 1
    logger.info("prearchive reload: %s", report)
    return report


RESTING = (Status.READY, Status.CONFLICT, Status.ERROR)


def _session_from_folder(project_id, timestamp, folder_name, folder: Path) -> PrearchiveSession | None:
    """A row for a folder the database did not know: every field from the row's document beside the folder
    (services/rowdoc.py) when there is one, else keyed by the StudyInstanceUID of its first file."""
    relative = f"{project_id}/{timestamp}/{folder_name}" if project_id else f"{timestamp}/{folder_name}"
    values = rowdoc.row_document_read(relative)
    if values and values.get("tag") and values.get("name"):
        if PrearchiveSession.objects.filter(project_id=project_id, tag=values["tag"], name=values["name"]).exists():
            logger.warning("prearchive reload: a session named like this folder exists already; left alone")
            return None
        if values.get("status") not in RESTING:  # it was receiving or in an operation: build it again
            values.update(status=Status.RECEIVING, lastmod=timezone.now())
        return PrearchiveSession.objects.create(project_id=project_id, timestamp=timestamp,
                                                folder_name=folder_name, **values)
    study = ""
    for path in _disk_files(folder).values():
        try:
            study = uid(header_read(path).dataset, "StudyInstanceUID")
        except (HeaderError, OSError):
            continue
        if study:
            break
    if not study:
        logger.warning("prearchive reload: a folder without readable DICOM was left alone")
        return None
    name = label_chars(folder_name)[:64]
    if PrearchiveSession.objects.filter(project_id=project_id, tag=study, name=name).exists():
        logger.warning("prearchive reload: a session of this folder's study is named like it; left alone")
        return None
    now = timezone.now()
    return PrearchiveSession.objects.create(
        project_id=project_id, timestamp=timestamp, folder_name=folder_name, name=name, tag=study,
        status=Status.RECEIVING, lastmod=now, uploaded=now, source="reload",
    )
