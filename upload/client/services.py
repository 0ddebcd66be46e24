"""The uploader client (issue 8): what XNAT's Desktop Client does, in the browser.

A transfer goes UPLOADING (bytes stream to its private folder) -> INSPECTING (safe extraction, headers
only) -> AWAITING (the user sees PHI-free summaries and chooses) -> IMPORTING (scripts, pixel templates,
intake) -> DONE, or FAILED with a reason. Nothing reaches the prearchive before the user confirms. The
folder is removed when the transfer ends, and ``transfers_cleanup`` removes abandoned ones.

Logs and audit entries carry transfer ids, labels and counts; never names, IDs or dates of patients.
"""
from __future__ import annotations

import logging
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from xnatlite import permissions
from xnatlite.models import Project, Subject
from xnatlite.selectors import site_config_get
from xnatlite.services import audit_record

from . import labels
from .inspect import headers_inspect, manifest_read, manifest_write
from .models import Transfer
from .scripts import ScriptProblem, describe_variables, scripts_for

logger = logging.getLogger(__name__)
Status = Transfer.Status
DEFAULT_ABANDON_AFTER = 24 * 3600

MSG_NO_RIGHTS = "You do not have permission to upload to project {project}."
MSG_UNKNOWN_PROJECT = "Unknown project: {project}"
MSG_TOO_BIG = "The upload is larger than the site's limit of {limit} bytes."
MSG_EMPTY = "The upload is empty."
MSG_NOT_NOW = "This upload is {status}; it cannot be changed now."
MSG_NO_SESSIONS = "No DICOM sessions were found in the upload."
MSG_INSPECT_FAILED = "The upload could not be inspected on the server ({kind})."
MSG_ABANDONED = "Abandoned: the upload was not confirmed in time, and its files were removed."
MSG_CANCELLED = "Cancelled by the user; the files were removed."


def abandon_after() -> int:
    return int(getattr(settings, "UPLOAD_CLIENT_ABANDON_AFTER", DEFAULT_ABANDON_AFTER))


def transfers_root() -> Path:
    return Path(str(settings.UPLOAD_TMP_ROOT)) / "client"


def _touch(transfer_id, **fields: Any) -> int:
    return Transfer.objects.filter(pk=transfer_id).update(updated=timezone.now(), **fields)


def _discard_files(transfer: Transfer) -> None:
    if transfer.work_dir:
        shutil.rmtree(transfer.work_dir, ignore_errors=True)


def transfer_fail(*, transfer_id, reason: str, from_statuses=None) -> bool:
    """Mark FAILED with a reason and remove the transfer's files."""
    qs = Transfer.objects.filter(pk=transfer_id)
    if from_statuses:
        qs = qs.filter(status__in=from_statuses)
    transfer = qs.first()
    if transfer is None:
        return False
    updated = qs.update(status=Status.FAILED, error=reason, finished=timezone.now(), updated=timezone.now())
    _discard_files(transfer)
    return bool(updated)


# ------------------------------------------------------------------ project settings


def project_for_upload(*, user, project_id: str) -> Project:
    project = Project.objects.filter(pk=project_id).first()
    if project is None:
        raise ValidationError(MSG_UNKNOWN_PROJECT.format(project=project_id))
    if not permissions.can_upload(user, project.pk):
        raise PermissionDenied(MSG_NO_RIGHTS.format(project=project_id))
    return project


def pet_tracers(*, project: Project) -> list[str]:
    """The project list when it is enabled, else the site list (XNAT's PetTracerListUtils)."""
    if project.pet_tracers_enabled:
        return project.pet_tracers.split()
    return site_config_get().pet_tracer_list


def uploader_settings(*, project: Project) -> dict[str, Any]:
    """What the page needs to know about the project (the Desktop Client reads the same over REST)."""
    scripts = scripts_for(project=project)
    try:
        variables = describe_variables(scripts=scripts)
        script_error = ""
    except ScriptProblem as exc:
        variables, script_error = [], str(exc)
    visible = [{"name": v.name, "label": v.label} for v in variables if not v.hidden]
    return {
        "project": project.pk, "allow_create_subject": project.allow_create_subject,
        "require_date": project.require_date,
        # Custom variables are not supported in bulk (seed 002): such projects upload one session at a time.
        "allow_bulk_upload": project.allow_bulk_upload and not visible,
        "subject_scheme": (project.default_subject_labeling_scheme or "manual").lower(),
        "session_scheme": project.default_session_labeling_scheme or "auto",
        "tracers": pet_tracers(project=project), "variables": visible,
        "scripts": [which for which, _text in scripts.texts], "script_error": script_error,
        "subjects": list(Subject.objects.filter(project=project).values_list("label", flat=True)[:5000]),
        "destination": "archive" if project.prearchive_code in (4, 5) else "prearchive",
    }


def session_labels_taken(*, project_id: str) -> set[str]:
    """Labels already used in the project: archived sessions and prearchive entries."""
    from prearchive.models import PrearchiveSession
    from xnatlite.models import ImageSession

    taken = set(ImageSession.objects.filter(project_id=project_id).values_list("label", flat=True))
    taken.update(PrearchiveSession.objects.filter(project_id=project_id).values_list("name", flat=True))
    return taken


def visit_label_next(*, project_id: str, pattern: str, taken=()) -> str:
    """``v##`` numbering: the first free number for ``pattern`` (e.g. ``S1_v##_mr``) in the project."""
    return labels.indexed_label_next(pattern=pattern, taken=session_labels_taken(project_id=project_id) | set(taken))


# ------------------------------------------------------------------ create, receive, inspect


def transfer_create(*, user, project_id: str, file_name: str, size: int = 0) -> Transfer:
    project = project_for_upload(user=user, project_id=project_id)
    limit = site_config_get().upload_max_bytes
    if size and size > limit:
        raise ValidationError(MSG_TOO_BIG.format(limit=limit))
    transfer = Transfer.objects.create(user=user, project=project, file_name=(file_name or "upload")[:255],
                                       size=max(0, int(size or 0)))
    work = transfers_root() / str(transfer.pk)
    work.mkdir(parents=True, exist_ok=True)
    Transfer.objects.filter(pk=transfer.pk).update(work_dir=str(work))
    transfer.work_dir = str(work)
    audit_record(actor=user.get_username(), action="upload_client_transfer_create", project_id=project.pk,
                 transfer=str(transfer.pk))
    transaction.on_commit(_cleanup_schedule_ensure)
    return transfer


def transfer_receive(*, transfer: Transfer, stream: BinaryIO, length: int | None) -> Transfer:
    """Stream the archive into the transfer's folder, recording progress; then queue the inspection."""
    if transfer.status != Status.UPLOADING:
        raise ValidationError(MSG_NOT_NOW.format(status=transfer.get_status_display().lower()))
    limit = site_config_get().upload_max_bytes
    if length is not None and length > limit:
        transfer_fail(transfer_id=transfer.pk, reason=MSG_TOO_BIG.format(limit=limit))
        raise ValidationError(MSG_TOO_BIG.format(limit=limit))
    dest = Path(transfer.work_dir) / "upload.bin"
    from upload.services import BodyTooBig, stream_copy

    try:
        with open(dest, "wb") as out:
            try:
                received = stream_copy(stream, out, limit=limit,
                                       progress=lambda copied: _touch(transfer.pk, bytes_received=copied))
            except BodyTooBig:
                raise ValidationError(MSG_TOO_BIG.format(limit=limit)) from None
        if received == 0:
            raise ValidationError(MSG_EMPTY)
    except ValidationError as exc:
        transfer_fail(transfer_id=transfer.pk, reason=exc.messages[0])
        raise
    except OSError:
        transfer_fail(transfer_id=transfer.pk, reason="The server could not store the upload.")
        raise ValidationError("The server could not store the upload; try again later.") from None
    if not Transfer.objects.filter(pk=transfer.pk, status=Status.UPLOADING).update(
            status=Status.INSPECTING, bytes_received=received, size=max(transfer.size, received),
            updated=timezone.now()):
        dest.unlink(missing_ok=True)
        raise ValidationError(MSG_NOT_NOW.format(status="no longer uploading"))
    transaction.on_commit(lambda: _enqueue("upload.client.transfer_inspect", transfer.pk))
    transfer.refresh_from_db()
    return transfer


def _enqueue(name: str, transfer_id) -> None:
    from . import tasks

    {"upload.client.transfer_inspect": tasks.transfer_inspect,
     "upload.client.transfer_import": tasks.transfer_import}[name].delay(str(transfer_id))


def transfer_inspect(*, transfer_id) -> str | None:
    """Extract (safely) and read the headers. Idempotent: only an INSPECTING transfer with no result yet
    is inspected; a failure leaves nothing on disk."""
    from upload.archives import ArchiveRejected, Limits, archive_extract

    transfer = Transfer.objects.filter(pk=transfer_id, status=Status.INSPECTING).first()
    if transfer is None:
        return None
    work = Path(transfer.work_dir)
    for old in work.glob("extract-*"):  # a crashed earlier attempt
        shutil.rmtree(old, ignore_errors=True)
    archive = work / "upload.bin"
    try:
        extraction = archive_extract(archive=archive, name=transfer.file_name, limits=Limits.from_site_config(),
                                     tmp_root=work)
        archive.unlink(missing_ok=True)
        from prearchive.services.intake import series_filters_for

        inspection, manifest = headers_inspect(files=extraction.files, root=work,
                                               filters=series_filters_for(project_id=transfer.project_id))
        inspection["skipped"] = [{"name": n[:200], "reason": r} for n, r in extraction.skipped[:200]]
        inspection["skipped_total"] = len(extraction.skipped)
        if not inspection["sessions"]:
            raise ArchiveRejected(MSG_NO_SESSIONS)
        manifest_write(work_dir=work, manifest=manifest)
    except ArchiveRejected as exc:
        transfer_fail(transfer_id=transfer_id, reason=str(exc))
        logger.info("transfer %s refused at inspection", transfer_id)
        return Status.FAILED
    except Exception as exc:  # noqa: BLE001 - the page shows a reason, never a traceback
        logger.exception("transfer %s: inspection failed", transfer_id)
        transfer_fail(transfer_id=transfer_id, reason=MSG_INSPECT_FAILED.format(kind=type(exc).__name__))
        return Status.FAILED
    updated = Transfer.objects.filter(pk=transfer_id, status=Status.INSPECTING).update(
        status=Status.AWAITING, inspection=inspection, updated=timezone.now())
    logger.info("transfer %s inspected: %d session(s), %d file(s)", transfer_id, len(inspection["sessions"]),
                sum(s["files"] for s in inspection["sessions"]))
    return Status.AWAITING if updated else None


# ------------------------------------------------------------------ suggestions


def _sample_header(transfer: Transfer, key: str):
    from prearchive.services.headers import header_read

    info = manifest_read(work_dir=Path(transfer.work_dir))["sessions"].get(key) or {}
    for files in (info.get("scans") or {}).values():
        if files:
            try:
                return header_read(Path(transfer.work_dir) / files[0], all_tags=True).dataset
            except Exception:  # noqa: BLE001 - a label suggestion without header tags
                return None
    return None


def _uses_subject(expression: str | None) -> bool:
    return bool(expression) and re.search(r"\bsubject\b", expression) is not None


def suggestions(*, transfer: Transfer, subjects: dict[str, str] | None = None,
                labels_kept: dict[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Suggested subject and session labels for every session of the transfer, unique among themselves
    and the project's existing sessions. ``subjects`` overrides the subject of some sessions;
    ``labels_kept``: labels the page already shows for some sessions (kept, and taken for the others).

    A visit number (``v##``) counts per subject: a label made from the subject is only suggested once the
    session has one, so sessions of different patients with no subject yet are not numbered as visits of
    one nameless subject (``_v00_mr``, ``_v01_mr``...)."""
    project = transfer.project
    conf = uploader_settings(project=project)
    manifest = manifest_read(work_dir=Path(transfer.work_dir))["sessions"]
    taken = session_labels_taken(project_id=project.pk)
    kept = {k: v for k, v in (labels_kept or {}).items() if v}
    taken.update(kept.values())
    subject_taken = set(conf["subjects"])
    expression = scripts_for(project=project).session_expression
    scheme = conf["session_scheme"]
    explicit = scheme.strip().lower() not in ("auto", "manual", "dicom_patient_id", "dicom_accession_num")
    needs_subject = scheme.strip().lower() in ("auto", "manual") or (explicit and _uses_subject(scheme))
    out: dict[str, dict[str, str]] = {}
    for session in transfer.inspection.get("sessions", []):
        key = session["key"]
        info = manifest.get(key, {})
        subject = (subjects or {}).get(key)
        if subject is None:
            subject = labels.subject_label_suggest(scheme=conf["subject_scheme"], taken=subject_taken,
                                                   patient_id=info.get("patient_id", ""),
                                                   patient_name=info.get("patient_name", ""))
            if conf["subject_scheme"] == "auto":
                subject_taken.add(subject)
        if key in kept:
            out[key] = {"subject": subject, "label": kept[key]}
            continue
        try:
            label = labels.session_label_suggest(
                scheme=scheme, subject=subject, modality=session["modality_label"],
                project=project.pk, taken=taken, header=_sample_header(transfer, key),
                patient_id=info.get("patient_id", ""), accession=info.get("accession", ""),
                script_expression=expression) if subject or not needs_subject else ""
        except labels.LabelError:
            label = ""
        if label:
            taken.add(label)
        out[key] = {"subject": subject, "label": label}
    return out


def sessions_shown(*, transfer: Transfer) -> dict[str, dict[str, Any]]:
    """What the bulk review shows the uploader to tell the sessions apart (patient name and ID, accession,
    the upload's folders), read from the transfer's private manifest. For the transfer's own user only;
    never logged nor stored in the database."""
    manifest = manifest_read(work_dir=Path(transfer.work_dir))["sessions"]
    empty = {"patient_name": "", "patient_id": "", "accession": "", "folders": [], "folders_total": 0}
    return {s["key"]: {**empty, **(manifest.get(s["key"], {}).get("shown") or {})}
            for s in transfer.inspection.get("sessions", [])}


# ------------------------------------------------------------------ discard and clean-up


def transfer_discard(*, transfer: Transfer, user) -> None:
    if transfer.status not in Transfer.OPEN_STATUSES:
        raise ValidationError(MSG_NOT_NOW.format(status=transfer.get_status_display().lower()))
    transfer_fail(transfer_id=transfer.pk, reason=MSG_CANCELLED, from_statuses=Transfer.OPEN_STATUSES)
    audit_record(actor=user.get_username(), action="upload_client_transfer_cancel",
                 project_id=transfer.project_id, transfer=str(transfer.pk))


def transfers_cleanup(*, older_than: int | None = None) -> dict[str, int]:
    """Fail and remove transfers left open longer than ``older_than`` seconds (default: the setting
    UPLOAD_CLIENT_ABANDON_AFTER), remove leftover folders of finished ones, and folders with no transfer."""
    seconds = abandon_after() if older_than is None else older_than
    cutoff = timezone.now() - timedelta(seconds=seconds)
    abandoned = 0
    for pk in Transfer.objects.filter(status__in=Transfer.OPEN_STATUSES, updated__lt=cutoff).values_list(
            "pk", flat=True):
        if transfer_fail(transfer_id=pk, reason=MSG_ABANDONED, from_statuses=Transfer.OPEN_STATUSES):
            abandoned += 1
    removed = 0
    root = transfers_root()
    if root.is_dir():
        known = {str(pk): status for pk, status in Transfer.objects.values_list("pk", "status")}
        for entry in root.iterdir():
            status = known.get(entry.name)
            if status in Transfer.OPEN_STATUSES or status == Status.IMPORTING:
                continue
            if status is None and entry.stat().st_mtime > time.time() - 60:
                continue  # a transfer being created right now
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
            removed += 1
    if abandoned or removed:
        logger.info("transfer clean-up: %d abandoned, %d folder(s) removed", abandoned, removed)
    return {"abandoned": abandoned, "removed": removed}


def _cleanup_schedule_ensure() -> None:
    """Keep one beat entry for the clean-up (hourly); created on first use."""
    try:
        from django_celery_beat.models import IntervalSchedule, PeriodicTask

        if PeriodicTask.objects.filter(name="Uploader transfer clean-up").exists():
            return
        schedule, _ = IntervalSchedule.objects.get_or_create(every=3600, period=IntervalSchedule.SECONDS)
        PeriodicTask.objects.get_or_create(name="Uploader transfer clean-up",
                                           defaults={"task": "upload.client.transfers_cleanup",
                                                     "interval": schedule})
    except Exception as exc:  # noqa: BLE001 - the management command is the fallback
        logger.warning("could not schedule the transfer clean-up: %s", type(exc).__name__)


def transfer_state(*, transfer: Transfer) -> dict[str, Any]:
    return {
        "id": str(transfer.pk), "status": transfer.status, "status_display": transfer.get_status_display(),
        "project": transfer.project_id, "file_name": transfer.file_name, "size": transfer.size,
        "bytes_received": transfer.bytes_received, "files_total": transfer.files_total,
        "files_done": transfer.files_done, "error": transfer.error, "summary": transfer.summary,
        # files the import filters drop: what intake filtered, plus the series the review showed as
        # "will be filtered" (left out of the import)
        "filtered": transfer_filtered_count(transfer=transfer),
        "created": transfer.created.isoformat(), "page": f"/upload/client/t/{transfer.pk}/",
    }


def transfer_filtered_count(*, transfer: Transfer) -> int:
    if "filtered" in (transfer.summary or {}):  # the import's count (left-out series included)
        return int(transfer.summary["filtered"] or 0)
    return int((transfer.choices or {}).get("filtered") or 0)


def work_path(transfer: Transfer, relative: str) -> Path:
    """A file of the transfer's folder, refusing anything outside it."""
    base = Path(transfer.work_dir).resolve()
    path = (base / relative).resolve()
    if base not in path.parents:
        raise ValidationError("Bad file reference.")
    return path

