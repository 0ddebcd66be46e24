"""The session builder (XNAT's PrearchiveRebuildHandler + session builder).

1. Claim: QUEUED_BUILDING (or a status the caller names) -> BUILDING by conditional UPDATE.
2. Scans from the file rows, streamed (a 10,000-instance session never sits in memory as objects): grouped
   by scan folder, i.e. SeriesNumber, else SeriesInstanceUID.
3. Session fields and document (JSON in the row, XML beside the folder as ``{folder}.xml``).
4. Finish with a conditional UPDATE from BUILDING: READY, CONFLICT (duplicate series numbers, several
   studies in one session) or ERROR (no files, or files refused because the site script failed). If a file
   arrived meanwhile the session is RECEIVING_INTERRUPT: it goes back to RECEIVING (and its countdown
   restarts) and nothing else happens, so it is rebuilt later with every file.
5. PET-MR: ``pet`` relabels PETMR -> PET; ``separate`` splits the session (services/petmr.py).
6. Auto-archive (code 4/5 or AA:true) hands the READY session to the archive job.
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from prearchive.models import PrearchiveFile, PrearchiveSession

from . import storage
from .conflicts import series_scan_ids
from .idle import idle_countdown_on_commit
from .document import ScanAccumulator, document_xml, lead_modality, scan_sort_key, session_type_for

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status

AUTO_ARCHIVE_CODES = (4, 5)
ROW_FIELDS = ("scan_id", "series_instance_uid", "series_number", "study_instance_uid", "sop_class_uid", "size",
              "frames", "modality", "series_description", "series_date", "series_time", "study_date",
              "study_time", "station_name", "manufacturer", "manufacturer_model_name", "protocol_name",
              "body_part_examined", "requested_procedure_description", "radiopharmaceutical")
MSG_DUPLICATE_SERIES = ("Series number {scan} is used by {count} different series: the later series are scans "
                        "{renamed} (XNAT conflict 17, the new scan is renamed). Archive with an overwrite choice "
                        "(append or delete) to accept.")
MSG_MIXED_STUDIES = "The session holds files of {count} studies (StudyInstanceUIDs {uids})."
MSG_NO_FILES = "No files were stored for this session ({filtered} filtered, {rejected} refused)."
MSG_UNREADABLE_ORPHANS = ("{count} file(s) in the session folder have no row and cannot be read; they were "
                          "left in place. Remove or replace them, then rebuild the session.")
MSG_BUILD_FAILED = ("The session could not be built: {step} failed ({error}). Fix the cause and rebuild it, "
                    "or delete it.")
TRANSIENT = (OperationalError, InterfaceError)  # the database is unreachable: retried, not the session's fault
MSG_ANON_FAILED = ("{count} file(s) were refused because the site-wide anonymization script failed on them; "
                   "they were not stored. Fix the script and send them again.")


def session_build(*, session_id: int, expected: tuple[str, ...] = (Status.QUEUED_BUILDING,),
                  auto_archive: bool = True) -> str | None:
    """Claim the session from one of ``expected`` and build it. Returns the final status, or None when
    the session was not in an expected status (someone else owns it). ``auto_archive=False``: a READY
    auto-archive session is not handed to the archive job (the caller does it, with its parameters).

    The build holds the session's job lock (services/joblock.py) from before the claim to the end, so
    "BUILDING and the lock is free" means the builder died, and services/recover.py queues the build again."""
    from .joblock import job_lock

    with job_lock("session", session_id) as got:
        if not got:
            return None
        claimed = PrearchiveSession.objects.filter(pk=session_id, status__in=expected).update(
            status=Status.BUILDING)
        if not claimed:
            return None
        status = _build(session_id=session_id)
    # After the lock is released: the archive job takes the same lock and would find it busy.
    if status == Status.READY and auto_archive:
        session = PrearchiveSession.objects.select_related("project").filter(pk=session_id).first()
        if session is not None and auto_archive_wanted(session):
            auto_archive_enqueue(session_id=session_id)
    return status


def session_build_claimed(*, session_id: int) -> str | None:
    """For the task and the idle checker: the session was set QUEUED_BUILDING by whoever queued it."""
    return session_build(session_id=session_id, expected=(Status.QUEUED_BUILDING,))


def _scans(session_id: int) -> tuple[dict[str, ScanAccumulator], set[str], dict[str, int]]:
    scans: dict[str, ScanAccumulator] = {}
    studies: set[str] = set()
    tracers: dict[str, int] = {}
    ids = series_scan_ids(session_id=session_id)
    rows = (PrearchiveFile.objects.filter(session_id=session_id).order_by().values(*ROW_FIELDS)
            .iterator(chunk_size=2000))
    for row in rows:
        scan_id = ids.get((row["scan_id"], row["series_instance_uid"] or ""), row["scan_id"])
        acc = scans.get(scan_id)
        if acc is None:
            acc = scans[scan_id] = ScanAccumulator(scan_id=scan_id)
        acc.add(row)
        if row["study_instance_uid"]:
            studies.add(row["study_instance_uid"])
        if row["radiopharmaceutical"]:
            tracers[row["radiopharmaceutical"]] = tracers.get(row["radiopharmaceutical"], 0) + 1
    return scans, studies, tracers


def _test_delay() -> None:
    """PREARCHIVE_TEST_BUILD_DELAY (seconds; test settings only) widens the build window so an integration
    test can send a file while a real worker builds."""
    delay = float(getattr(settings, "PREARCHIVE_TEST_BUILD_DELAY", 0) or 0)
    if delay > 0:
        time.sleep(delay)


def _conflicts(scans: dict[str, ScanAccumulator], studies: set[str]) -> list[str]:
    problems = []
    if len(studies) > 1:
        problems.append(MSG_MIXED_STUDIES.format(count=len(studies), uids=", ".join(sorted(studies))))
    renamed: dict[str, list[str]] = {}
    for scan_id in sorted(scans, key=scan_sort_key):
        number = scans[scan_id].first.get("scan_id", scan_id)
        if number != scan_id:
            renamed.setdefault(number, []).append(scan_id)
    for number in sorted(renamed, key=scan_sort_key):
        problems.append(MSG_DUPLICATE_SERIES.format(scan=number, count=len(renamed[number]) + 1,
                                                    renamed=", ".join(renamed[number])))
    return problems


def pet_tracer_list(project) -> list[str]:
    """The project's list when it is enabled, else the site's (XNAT PetTracerListUtils)."""
    if project is not None and project.pet_tracers_enabled:
        return project.pet_tracers.split()
    from xnatlite.selectors import site_config_get

    return site_config_get().sitewide_pet_tracers.split()


def pet_mr_mode(project) -> str:
    if project is not None and project.pet_mr:
        return project.pet_mr
    from xnatlite.selectors import site_config_get

    return site_config_get().sitewide_pet_mr or "petmr"


def relabel_pet(label: str) -> str:
    """sitewidePetMr=pet: PETMR in the label becomes PET (XNATSessionBuilder)."""
    return label.replace("PETMR", "PET").replace("petmr", "pet")


def document_build(session: PrearchiveSession, scans: dict[str, ScanAccumulator], studies: set[str],
                   tracers: dict[str, int]) -> dict[str, Any]:
    project = session.project
    scan_docs = [scans[k].as_dict() for k in sorted(scans, key=scan_sort_key)]
    modalities = [s["modality"] for s in scan_docs]
    session_type = session_type_for(modalities)
    first = next((scans[k].first for k in sorted(scans, key=scan_sort_key)), {})
    date = next((a.first.get("study_date") for a in scans.values() if a.first.get("study_date")), "")
    time = next((a.first.get("study_time") for a in scans.values() if a.first.get("study_time")), "")
    from .document import _date, _time, value_warnings

    warnings = value_warnings((("", "StudyDate", date or "", "the session date"),
                               ("", "StudyTime", time or "", "the session time")))
    for key in sorted(scans, key=scan_sort_key):
        warnings.extend(scans[key].warnings())

    doc: dict[str, Any] = {
        "xsiType": session_type,
        "project": session.project_id or "",
        "subject_ID": session.subject,
        "label": session.name,
        "UID": sorted(studies)[0] if len(studies) == 1 else "",
        "date": _date(date or ""),
        "time": _time(time or ""),
        "modality": lead_modality(modalities),
        "scanner": first.get("station_name", ""),
        "visit": session.visit,
        "prearchivePath": session.relative_dir,
        "scans": scan_docs,
        "pet_tracer": "",
    }
    if warnings:
        doc["warnings"] = warnings
    if "PT" in modalities:
        offered = pet_tracer_list(project)
        doc["pet_tracers"] = offered
        by_upper = {t.upper(): t for t in offered}
        for name in sorted(tracers, key=lambda n: -tracers[n]):
            if name.strip().upper() in by_upper:
                doc["pet_tracer"] = by_upper[name.strip().upper()]
                break
        if session_type == "xnat:petmrSessionData":
            mode = pet_mr_mode(project)
            doc["pet_mr"] = mode
            if mode == "pet":
                doc["xsiType"] = "xnat:petSessionData"
                doc["label"] = relabel_pet(session.name)
    return doc


def _final_status(session: PrearchiveSession, scans, conflicts: list[str]) -> tuple[str, str]:
    if session.anon_failed_count:
        return Status.ERROR, MSG_ANON_FAILED.format(count=session.anon_failed_count)
    if not scans:
        return Status.ERROR, MSG_NO_FILES.format(filtered=session.filtered_count, rejected=session.rejected_count)
    if conflicts:
        return Status.CONFLICT, " ".join(conflicts)
    return Status.READY, ""


def _write_document(session: PrearchiveSession, doc: dict[str, Any]) -> None:
    base = storage.root() / session.relative_dir
    storage.bytes_write_atomic(base.with_name(base.name + ".xml"), document_xml(doc))


def _reconcile(session: PrearchiveSession):
    """The folder and the rows agree before the build reads the rows: a file without a row (its receiver
    died before the row's commit) is adopted, never ignored (issue 16)."""
    from .reload import session_files_adopt

    return session_files_adopt(session=session)


def _build(*, session_id: int) -> str | None:
    """Build, and end in a final status whatever happens: an error in any step (a value the database
    refuses, the document not writable, a bug) makes the session ERROR with the step and the error's type
    as its reason (never BUILDING for recovery to queue again and again). A database that is unreachable
    (TRANSIENT) is not the session's fault: that is raised, the task retries and recovery requeues."""
    step = "reading the session"
    try:
        session = PrearchiveSession.objects.select_related("project").get(pk=session_id)
        logger.info("building prearchive session %s", session_id)
        step = "adopting files without a row"
        adopted = _reconcile(session)
        step = "reading the file rows"
        scans, studies, tracers = _scans(session_id)
        _test_delay()
        step = "making the session document"
        conflicts = _conflicts(scans, studies)
        doc = document_build(session, scans, studies, tracers)
        status, reason = _final_status(session, scans, conflicts)
        if adopted.unreadable:
            status, reason = Status.ERROR, MSG_UNREADABLE_ORPHANS.format(count=adopted.unreadable)
        if scans:
            step = "writing the session document"
            _write_document(session, doc)
        step = "saving the session"
        status = _finish(session, session_id, scans, doc, status, reason)
    except TRANSIENT:
        raise
    except Exception as exc:  # noqa: BLE001 - a build that throws leaves an ERROR session, never a stuck one
        # The type only: an exception's text can quote header values (PHI).
        logger.error("building prearchive session %s failed while %s (%s)", session_id, step, type(exc).__name__)
        session_build_failed(session_id=session_id, reason=MSG_BUILD_FAILED.format(step=step,
                                                                                   error=type(exc).__name__))
        return Status.ERROR
    if status == Status.SEPARATING:
        from .petmr import session_separate

        for child_id in session_separate(session_id=session_id):
            session_build(session_id=child_id)
    return status


def session_build_failed(*, session_id: int, reason: str) -> bool:
    """BUILDING -> ERROR with ``reason`` (also for the task when a transient fault outlasts its retries)."""
    return bool(PrearchiveSession.objects.filter(pk=session_id, status=Status.BUILDING).update(
        status=Status.ERROR, error_message=reason, lastmod=timezone.now()))


def _finish(session: PrearchiveSession, session_id: int, scans, doc: dict[str, Any], status: str,
            reason: str) -> str | None:
    separate = status == Status.READY and doc.get("pet_mr") == "separate"
    values = dict(
        document=doc, file_count=sum(a.file_count for a in scans.values()),
        size=sum(a.size for a in scans.values()), modality=doc["modality"], session_type=doc["xsiType"],
        scan_date=doc["date"] or None, scan_time=doc["time"] or None, pet_tracer=doc["pet_tracer"],
        built_at=timezone.now(), error_message=reason,
        status=Status.SEPARATING if separate else status,
    )
    if doc["label"] != session.name and not PrearchiveSession.objects.filter(
            project_id=session.project_id, tag=session.tag, name=doc["label"]).exists():
        values["name"] = doc["label"]
    with transaction.atomic():
        finished = PrearchiveSession.objects.filter(pk=session_id, status=Status.BUILDING).update(**values)
        if not finished:
            return _interrupted(session_id)
        from .rowdoc import row_document_write_on_commit

        row_document_write_on_commit(session_id=session_id)  # what a reload rebuilds the row from
    logger.info("prearchive session %s built: %s, %d scan(s), %d file(s)", session_id,
                values["status"], len(scans), values["file_count"])
    return values["status"]


def _interrupted(session_id: int) -> str | None:
    """Files arrived during the build: back to RECEIVING; the countdown restarts."""
    back = PrearchiveSession.objects.filter(pk=session_id, status=Status.RECEIVING_INTERRUPT).update(
        status=Status.RECEIVING, lastmod=timezone.now())
    if back:
        logger.info("prearchive session %s: files arrived during the build; receiving again", session_id)
        idle_countdown_on_commit(session_id)
        return Status.RECEIVING
    return None


def auto_archive_wanted(session: PrearchiveSession) -> bool:
    if session.project_id is None:
        return False
    code = session.autoarchive if session.autoarchive is not None else session.project.prearchive_code
    return code in AUTO_ARCHIVE_CODES


def auto_archive_enqueue(*, session_id: int) -> bool:
    """Hand a READY auto-archive session to the archive job, when that job exists."""
    try:
        from prearchive.services.archive import session_archive_enqueue
    except ImportError:
        logger.warning("auto-archive wanted for session %s but the archive job is not installed", session_id)
        return False
    session_archive_enqueue(session_id=session_id)
    return True


def document_json(session: PrearchiveSession) -> str:
    return json.dumps(session.document, sort_keys=True)
