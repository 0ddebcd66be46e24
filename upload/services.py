"""The import routes' logic: XNAT's import parameters, permission checks, archives and single files into
intake, the commit after import, and the compressed uploader's jobs.

Every file goes through ``prearchive.services.intake.dicom_file_receive`` (the one intake function); this
module never writes into the prearchive itself. Logs carry counts and ids only, never file names or
header values.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Mapping

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from xnatlite import permissions
from xnatlite.models import Project, Subject
from xnatlite.selectors import project_resolve, site_config_get
from xnatlite.services import audit_record

from .archives import ArchiveRejected, Limits, archive_extract
from .models import UploadJob

logger = logging.getLogger(__name__)

HANDLERS = ("DICOM-zip", "SI", "gradual-DICOM", "inbox")
DICOM_CONTENT_TYPES = ("application/dicom", "application/x-mirc", "application/x-mirc-dicom")
CHUNK = 1024 * 1024
SKIPPED_LIMIT = 1000

MSG_UNKNOWN_HANDLER = "Unknown importer implementation specified: {handler}"
MSG_UNKNOWN_PROJECT = "Unknown project: {project}"
MSG_NO_RIGHTS = "You do not have permission to upload to project {project}."
MSG_NO_PROJECT_RIGHTS = "You do not have permission to upload to any project."
MSG_EMPTY_BODY = "The request body is empty: nothing to import."
MSG_NO_SUBJECT = ("Project {project} does not allow new subjects to be created on upload; {subject} is not "
                  "an existing subject.")
MSG_TOO_BIG = "The upload is larger than the site's limit of {limit} bytes."
MSG_INTAKE_FAILED = "The server could not store the files ({detail}); nothing more was imported. Try again later."
MSG_HIDDEN = "The compressed uploader is disabled on this site."
MSG_REFUSED = ("{count} of {total} file(s) were refused and not stored; send them again once fixed (the "
               "position is the file's place among the files of the upload, in the archive's order):")
MSG_REFUSED_STORED = "The other files were stored in:"
# Reasons intake gives for a file that is not DICOM at all (a README in a zip): skipped quietly, as XNAT does.
_NOT_DICOM_REASONS = ("The file is not DICOM", "The file is too short to be DICOM")
MSG_NO_DICOM = "Upload did not include parseable files for session generation."  # XNAT's words


class ImportRefused(Exception):
    """A request the caller can fix: ``status`` is the HTTP status, the message is shown as is."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


# ------------------------------------------------------------------ parameters

_ALIASES = {"project": "PROJECT_ID", "subject": "SUBJECT_ID", "session": "EXPT_LABEL", "experiment": "EXPT_LABEL",
            "auto-archive": "AA", "visit": "VISIT", "source": "SOURCE"}
_DEST = re.compile(r"^/?(?P<where>archive|prearchive)(?:/projects/(?P<project>[^/]+)"
                   r"(?:/subjects/(?P<subject>[^/]+)(?:/experiments/(?P<session>[^/]+))?)?)?/?$")


def import_params_normalize(*, raw: Mapping[str, str]) -> dict[str, str]:
    """XNAT's names for what clients send: lower-case ``project``/``subject``/``session`` (xnatpy),
    ``auto-archive`` → ``AA``, and ``dest`` (which implies ``action=commit`` and sets AA)."""
    params = {k: str(v) for k, v in raw.items()}
    for alias, name in _ALIASES.items():
        if params.get(alias) and not params.get(name):
            params[name] = params[alias]
    dest = params.get("dest", "").strip()
    if dest:
        match = _DEST.match(dest)
        if match is None:
            raise ImportRefused(f"Invalid dest {dest!r}: use /archive/projects/P or /prearchive/projects/P.")
        for group, name in (("project", "PROJECT_ID"), ("subject", "SUBJECT_ID"), ("session", "EXPT_LABEL")):
            if match.group(group) and not params.get(name):
                params[name] = match.group(group)
        params.setdefault("AA", "true" if match.group("where") == "archive" else "false")
        params["action"] = "commit"
    if str(params.get("prearchive_code", "")).strip() == "1" and not params.get("AA"):
        params["AA"] = "true"
    return params


def import_handler_choose(*, params: Mapping[str, str], content_type: str) -> str:
    handler = params.get("import-handler", "").strip()
    if not handler:
        if content_type in DICOM_CONTENT_TYPES:
            return "gradual-DICOM"
        return site_config_get().ui_default_compressed_uploader_importer or "DICOM-zip"
    if handler not in HANDLERS:
        raise ImportRefused(MSG_UNKNOWN_HANDLER.format(handler=handler), status=404)
    return handler


def _prevent_anon_check(*, user, project_id: str | None, params: dict[str, str]) -> None:
    """``prevent_anon=true`` from someone the site does not let skip the scripts is ignored (as if not
    sent): the site and project scripts run. Ignored rather than refused, so XNAT's Desktop Client, which
    always sends it after anonymizing, keeps working for every uploader; the server anonymizes anyway."""
    if _truthy(params.get("prevent_anon")) and not permissions.may_prevent_anon(user, project_id):
        logger.info("prevent_anon ignored: the uploader may not skip the anonymization scripts here")
        params["prevent_anon"] = "false"


def import_authorize(*, user, params: dict[str, str]) -> str | None:
    """Resolve PROJECT_ID (ID or alias) and check upload rights; returns the project ID or None (the files'
    headers will route them). Also enforces the project's allow-create-subject for a named subject."""
    name = params.get("PROJECT_ID", "").strip()
    if not name:
        if not (permissions.is_site_admin(user)
                or permissions.projects_for(user, permissions.UPLOAD_ROLES).exists()):
            raise ImportRefused(MSG_NO_PROJECT_RIGHTS, status=403)
        _prevent_anon_check(user=user, project_id=None, params=params)
        return None
    project_id = project_resolve(name)
    if project_id is None or not permissions.project_visible(user, project_id):  # alike for outsiders
        raise ImportRefused(MSG_UNKNOWN_PROJECT.format(project=name), status=404)
    if not permissions.can_upload(user, project_id):
        raise ImportRefused(MSG_NO_RIGHTS.format(project=name), status=403)
    params["PROJECT_ID"] = project_id
    _prevent_anon_check(user=user, project_id=project_id, params=params)
    subject = params.get("SUBJECT_ID", "").strip()
    if subject:
        project = Project.objects.get(pk=project_id)
        if not project.allow_create_subject and not Subject.objects.filter(project=project, label=subject).exists():
            raise ImportRefused(MSG_NO_SUBJECT.format(project=project_id, subject=subject), status=403)
    return project_id


def _sender_must_know(reason: str) -> bool:
    from prearchive.services.intake import MSG_SCRIPT_REJECT

    return reason != MSG_SCRIPT_REJECT and not reason.startswith(_NOT_DICOM_REASONS)


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("true", "t", "1", "yes")


# ------------------------------------------------------------------ the report


@dataclass
class ImportReport:
    started: Any = field(default_factory=timezone.now)
    session_ids: list[int] = field(default_factory=list)
    uris: dict[int, str] = field(default_factory=dict)
    stored: int = 0
    duplicates: int = 0
    filtered: int = 0
    rejected: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    skipped_total: int = 0
    parseable: int = 0  # files intake read as DICOM (stored, filtered, or refused by the site script)
    files: int = 0  # files given to intake
    refused: list[tuple[int, str]] = field(default_factory=list)  # (position, why): DICOM thrown away
    refused_total: int = 0

    def skip(self, name: str, reason: str) -> None:
        self.skipped_total += 1
        if len(self.skipped) < SKIPPED_LIMIT:
            self.skipped.append((name, reason))

    def add(self, result, name: str) -> None:
        self.files += 1
        if result.status != "rejected" or result.session_id is not None:
            self.parseable += 1
        if result.status == "rejected" and _sender_must_know(result.reason):
            self.refused_total += 1
            if len(self.refused) < SKIPPED_LIMIT:
                self.refused.append((self.files, result.reason or "refused"))
        if result.session_id is not None and result.status in ("stored", "duplicate"):
            if result.session_id not in self.uris:
                self.session_ids.append(result.session_id)
            self.uris[result.session_id] = result.uri
        if result.status == "stored":
            self.stored += 1
        elif result.status == "duplicate":
            self.duplicates += 1
        elif result.status == "filtered":
            self.filtered += 1
            self.skip(name, result.reason or "filtered by a series import filter")
        else:
            self.rejected += 1
            self.skip(name, result.reason or "refused")

    def refusals_raise(self) -> None:
        """Files thrown away that the sender meant as DICOM (unreadable header, no UID, the site script
        failed): a 422 that says which (by position, never by a name or header value) and why, so the
        sender keeps and resends them. Not for files a filter or the script's reject[] dropped on purpose,
        nor for files that are not DICOM at all."""
        if not self.refused_total:
            return
        lines = [MSG_REFUSED.format(count=self.refused_total, total=self.files)]
        lines += [f"file {position}: {reason}" for position, reason in self.refused]
        uris = self.uri_list()
        if uris:
            lines.append(MSG_REFUSED_STORED)
            lines += uris
        raise ImportRefused("\n".join(lines), status=422)

    def uri_list(self) -> list[str]:
        """Prearchive URIs; an archive URI for a session already handed to the archive (auto-archive)."""
        from prearchive.models import PrearchiveSession

        Status = PrearchiveSession.Status
        out = []
        live = {s.pk: s for s in PrearchiveSession.objects.filter(pk__in=self.session_ids)}
        for pk in self.session_ids:
            s = live.get(pk)
            if s is not None and s.project_id and s.status in (Status.QUEUED_ARCHIVING, Status.ARCHIVING):
                out.append(f"/data/archive/projects/{s.project_id}/subjects/{s.subject}/experiments/{s.name}")
            else:
                out.append(s.uri if s is not None else self.uris[pk])
        return out

    def summary(self) -> dict[str, Any]:
        from prearchive.models import PrearchiveSession

        sessions = []
        live = {s.pk: s for s in PrearchiveSession.objects.filter(pk__in=self.session_ids)}
        for pk in self.session_ids:
            s = live.get(pk)
            if s is None:
                sessions.append({"uri": self.uris[pk], "page": "", "status": "ARCHIVED", "created": True})
                continue
            sessions.append({
                "uri": s.uri, "page": _review_page(s.pk),
                "project": s.project_label, "subject": s.subject, "label": s.name, "status": s.status,
                "files": s.file_count or PrearchiveSession.objects.get(pk=pk).files.count(),
                "created": s.uploaded >= self.started,
            })
        return {"sessions": sessions, "stored": self.stored, "duplicates": self.duplicates,
                "filtered": self.filtered, "rejected": self.rejected,
                "skipped": [{"name": n, "reason": r} for n, r in self.skipped], "skipped_total": self.skipped_total}


def _review_page(session_id: int) -> str:
    """The prearchive review page of a session (the prearchive app's), else "" (the REST URI serves)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse("prearchive-session", args=[session_id])
    except NoReverseMatch:
        return ""


# ------------------------------------------------------------------ into intake

Progress = Callable[[int, int], None]


def files_import(*, files: list[tuple[Path, str]], params: dict[str, str], user, source: str,
                 report: ImportReport, progress: Progress | None = None, keep_originals: bool = False) -> None:
    """Give the files to intake together (it takes each file over, and writes the rows of many in one
    statement). On a server fault, stop: the files already taken in stay (each one is complete and
    idempotent by SOPInstanceUID); the caller reports the error."""
    from prearchive.services.intake import IntakeError, dicom_files_receive

    prevent_anon = _truthy(params.get("prevent_anon"))
    total = len(files)
    results = dicom_files_receive((path for path, _ in files), source=source, params=params,
                                  prevent_anon=prevent_anon, user=user)
    done = 0
    try:
        for result in results:
            report.add(result, files[done][1])  # one result a file, in order
            done += 1
            if progress is not None:
                progress(done, total)
    except IntakeError as exc:
        raise ImportRefused(MSG_INTAKE_FAILED.format(detail=exc), status=503) from None


def import_commit(*, report: ImportReport, params: Mapping[str, str]) -> None:
    """``action=commit`` (and ``dest``): build each session now; the builder hands READY auto-archive
    sessions to the archive job."""
    if params.get("action", "").lower() != "commit":
        return
    from prearchive.models import PrearchiveSession
    from prearchive.services.builder import session_build

    Status = PrearchiveSession.Status
    for pk in report.session_ids:
        try:
            session_build(session_id=pk, expected=(Status.RECEIVING, Status.RECEIVING_INTERRUPT, Status.READY,
                                                   Status.CONFLICT, Status.ERROR))
        except Exception as exc:  # noqa: BLE001 - the builder leaves the session in ERROR with a reason
            logger.warning("commit: building session %s failed: %s", pk, type(exc).__name__)


def _pet_tracer_set(*, report: ImportReport, tracer: str) -> None:
    if not tracer:
        return
    from prearchive.models import PrearchiveSession

    PrearchiveSession.objects.filter(pk__in=report.session_ids, modality__in=("PT", "PET")).update(
        pet_tracer=tracer[:64])


def archive_import(*, archive: Path, name: str, params: dict[str, str], user, source: str = "",
                   progress: Progress | None = None, on_extracted: Callable[[int], None] | None = None,
                   report: ImportReport | None = None, tmp_root: Path | None = None,
                   refusals: bool = False) -> ImportReport:
    """DICOM-zip / SI: extract safely (refusing the whole archive on any violation), then import.
    ``tmp_root``: where the extraction folder goes (default UPLOAD_TMP_ROOT). ``refusals``: raise
    ImportRefused (422) after the import when files were refused (ImportReport.refusals_raise)."""
    report = report or ImportReport()
    tmp_root = tmp_root or Path(str(settings.UPLOAD_TMP_ROOT))
    try:
        extraction = archive_extract(archive=archive, name=name, limits=Limits.from_site_config(),
                                     tmp_root=tmp_root)
    except ArchiveRejected as exc:
        raise ImportRefused(str(exc), status=400) from None
    try:
        for entry, reason in extraction.skipped:
            report.skip(entry, reason)
        if on_extracted is not None:
            on_extracted(len(extraction.files))
        files_import(files=extraction.files, params=params, user=user, source=source or "upload", report=report,
                     progress=progress)
    finally:
        extraction.cleanup()
    if report.parseable == 0:  # nothing was stored, so nothing is to undo
        logger.info("archive import refused: no DICOM among %d file(s)", report.skipped_total)
        raise ImportRefused(MSG_NO_DICOM, status=400)
    logger.info("archive import: %d stored, %d duplicate, %d filtered, %d refused, %d skipped, %d session(s)",
                report.stored, report.duplicates, report.filtered, report.rejected, report.skipped_total,
                len(report.session_ids))
    import_commit(report=report, params=params)
    _pet_tracer_set(report=report, tracer=params.get("TRACER", ""))
    if refusals:
        report.refusals_raise()
    return report


def dicom_import(*, path: Path, params: dict[str, str], user, source: str = "",
                 report: ImportReport | None = None) -> ImportReport:
    """gradual-DICOM: one DICOM object."""
    report = report if report is not None else ImportReport()
    files_import(files=[(path, "upload.dcm")], params=params, user=user, source=source or "gradual-DICOM",
                 report=report)
    import_commit(report=report, params=params)
    report.refusals_raise()
    return report


def import_receipt_record(*, report: ImportReport, actor: str, route: str, project_id: str = "",
                          failed: str = "") -> None:
    """One audit event (``import_receive``) per REST or inbox import request, recorded after the request's
    work commits: the route, the counts and the sessions' labels (their prearchive ids kept for the upload
    history's links). ``route``: "REST" or "inbox". Never a file name or a header value; ``failed``: the
    refusal's first line."""
    from prearchive.models import PrearchiveSession

    def record() -> None:
        rows = list(PrearchiveSession.objects.filter(pk__in=report.session_ids).values_list("pk", "project_id",
                                                                                          "name"))
        project = project_id or next((p for _pk, p, _name in rows if p), "")
        audit_record(actor=actor, action="import_receive", project_id=project or "", route=route,
                     stored=report.stored, duplicates=report.duplicates, filtered=report.filtered,
                     rejected=report.rejected, skipped=report.skipped_total,
                     sessions=[name for _pk, _p, name in rows], prearchive=[pk for pk, _p, _name in rows],
                     **({"reason": failed.splitlines()[0][:300]} if failed else {}))

    transaction.on_commit(record)


class BodyTooBig(Exception):
    """A request body went past the site's upload limit."""


def stream_copy(stream: BinaryIO, out: BinaryIO, *, limit: int,
                progress: Callable[[int], None] | None = None) -> int:
    """Copy ``stream`` into ``out`` a chunk at a time (never all in memory); returns the bytes copied.
    Raises BodyTooBig as soon as more than ``limit`` came. ``progress(copied)`` at most twice a second."""
    copied, last = 0, 0.0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            return copied
        copied += len(chunk)
        if copied > limit:
            raise BodyTooBig
        out.write(chunk)
        if progress is not None and time.monotonic() - last > 0.5:
            last = time.monotonic()
            progress(copied)


def body_to_temp(*, stream: BinaryIO, suffix: str = "", length: int | None = None) -> Path:
    """Stream a request body to a temporary file under UPLOAD_TMP_ROOT (never all in memory)."""
    tmp_root = Path(str(settings.UPLOAD_TMP_ROOT))
    tmp_root.mkdir(parents=True, exist_ok=True)
    limit = site_config_get().upload_max_bytes
    if length is not None and length > limit:
        raise ImportRefused(MSG_TOO_BIG.format(limit=limit), status=413)
    fd, name = tempfile.mkstemp(prefix="upload-", suffix=suffix, dir=tmp_root)
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                size = stream_copy(stream, out, limit=limit)
            except BodyTooBig:
                raise ImportRefused(MSG_TOO_BIG.format(limit=limit), status=413) from None
        if size == 0:
            raise ImportRefused(MSG_EMPTY_BODY, status=400)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


# ------------------------------------------------------------------ compressed uploader jobs


def uploader_projects(*, user):
    return permissions.projects_for(user, permissions.UPLOAD_ROLES).order_by("id")


def upload_job_create(*, user, params: dict[str, str], file_name: str, stream: BinaryIO,
                      length: int | None) -> UploadJob:
    """The uploader page's POST: check, stream the archive to disk, queue its import."""
    if site_config_get().ui_hide_compressed_uploader_upload_option:
        raise ImportRefused(MSG_HIDDEN, status=403)
    params = import_params_normalize(raw=params)
    project_id = import_authorize(user=user, params=params)
    if project_id is None:
        raise ImportRefused("Choose a project.", status=400)
    project = Project.objects.get(pk=project_id)
    # The destination follows the project's prearchive code; the session is built at once either way.
    params.setdefault("dest", f"/{'archive' if project.prearchive_code in (4, 5) else 'prearchive'}"
                              f"/projects/{project_id}")
    params = import_params_normalize(raw=params)
    params.setdefault("SOURCE", "uploader")
    path = body_to_temp(stream=stream, suffix=".upload", length=length)
    try:
        with transaction.atomic():
            job = UploadJob.objects.create(user=user, project=project, params=params, file_name=file_name[:255],
                                           archive_path=str(path), size=path.stat().st_size)
            transaction.on_commit(lambda: _job_enqueue(job.pk))
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    logger.info("upload job %s queued (%d bytes)", job.pk, job.size)
    return job


MSG_ARCHIVE_GONE = "The uploaded archive is no longer on the server; upload it again."


def _job_enqueue(job_id) -> None:
    from .tasks import upload_job_run as upload_job_run_task

    upload_job_run_task.delay(str(job_id))


def upload_job_work_dir(job_id) -> Path:
    """The job's own extraction folder: a job resumed after its worker died removes what the dead run left."""
    return Path(str(settings.UPLOAD_TMP_ROOT)) / f"job-{job_id}"


RUNNING_UPLOAD = (UploadJob.Status.EXTRACTING, UploadJob.Status.IMPORTING)


def upload_job_run(*, job_id) -> str | None:
    """Run one uploader job (the Celery task calls this). The job holds its job lock (services/joblock.py)
    while it runs, so a job EXTRACTING or IMPORTING whose lock is free lost its worker: a redelivered message
    (or job recovery) claims it again and runs it from its archive, which stays on disk until the job ends
    (files already taken in come again as duplicates: each instance is stored once). A live job's second
    message is a no-op. Returns the final status, or None when there was nothing to do."""
    from prearchive.services.joblock import job_lock

    with job_lock("upload", str(job_id)) as got:
        if not got:
            return None
        return _upload_job_run(job_id=job_id)


def _upload_job_run(*, job_id) -> str | None:
    Status = UploadJob.Status
    if not UploadJob.objects.filter(pk=job_id, status__in=(Status.QUEUED,) + RUNNING_UPLOAD).update(
            status=Status.EXTRACTING, started=timezone.now()):
        return None
    job = UploadJob.objects.select_related("user").get(pk=job_id)
    work = upload_job_work_dir(job_id)
    shutil.rmtree(work, ignore_errors=True)  # what a dead run extracted (raw PHI): never left behind
    last = [0.0]

    def on_extracted(total: int) -> None:
        UploadJob.objects.filter(pk=job_id).update(status=Status.IMPORTING, files_total=total, files_done=0)

    def progress(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 0.3:
            last[0] = now
            UploadJob.objects.filter(pk=job_id).update(files_done=done)

    report = ImportReport(started=job.created)
    archive = Path(job.archive_path)
    try:
        if not archive.is_file():
            raise ImportRefused(MSG_ARCHIVE_GONE, status=500)
        archive_import(archive=archive, name=job.file_name, params=dict(job.params), user=job.user,
                       source="uploader", progress=progress, on_extracted=on_extracted, report=report,
                       tmp_root=work)
        status, error = Status.DONE, ""
    except ImportRefused as exc:
        status, error = Status.FAILED, exc.message
    except Exception as exc:  # noqa: BLE001 - the page shows a reason, never a traceback
        logger.exception("upload job %s failed", job_id)
        status, error = Status.FAILED, f"The import failed on the server ({type(exc).__name__})."
    summary = report.summary()
    with transaction.atomic():
        UploadJob.objects.filter(pk=job_id).update(status=status, error=error, summary=summary,
                                                   finished=timezone.now(), archive_path="")
        # Counts and labels only: never the archive's file name (it may carry a patient's name).
        audit_record(actor=job.user.get_username(), action="upload_job_done" if status == Status.DONE
                     else "upload_job_failed", project_id=job.project_id, stored=report.stored,
                     duplicates=report.duplicates, filtered=report.filtered, rejected=report.rejected,
                     sessions=[s["label"] for s in summary["sessions"] if s.get("label")],
                     **({"reason": error.splitlines()[0]} if error else {}))
    archive.unlink(missing_ok=True)  # only once the job's end is recorded: a killed run still has it
    shutil.rmtree(work, ignore_errors=True)
    return status


def upload_job_state(*, job: UploadJob) -> dict[str, Any]:
    return {"id": str(job.pk), "status": job.status, "file_name": job.file_name, "size": job.size,
            "files_total": job.files_total, "files_done": job.files_done, "error": job.error,
            "summary": job.summary if job.status in (UploadJob.Status.DONE, UploadJob.Status.FAILED) else {}}
