"""Edits of archived data as worker jobs (issue 14 item 7): relabel, move and reassign a session, relabel a
subject, each re-running the project script when ``rerunProjectAnonOnRename`` is on.

1. Request (``archived_session_update_request`` / ``subject_relabel_request``, from the pages and REST): check
   the edit now (a bad label or a taken one is refused at once), refuse a second edit while one is queued
   or running on the same session or subject, create the ArchiveJob (QUEUED) and queue the task on commit
   with the job id only.
2. Job (``archive_job_run``): claim QUEUED -> RUNNING by conditional UPDATE and hold the session's (or
   subject's) PostgreSQL advisory lock for the run, so two workers never edit the same files. The edit writes
   every new file beside the old ones first, switches folders by rename, and changes the database last
   (services.py). Progress (files done / total) is written as it goes; a script error or a refused edit ends
   the job FAILED with a message for the user and nothing changed; anything unexpected is logged with its
   type only, and the job says so.
The page and ``GET /data/services/archive/jobs/{id}`` show a job's status, progress and error.
"""
from __future__ import annotations

import logging
import time

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from xnatlite.models import ArchiveJob, ImageSession, Subject

logger = logging.getLogger(__name__)
Status = ArchiveJob.Status
LIVE = (Status.QUEUED, Status.RUNNING)
MSG_BUSY = "Another edit of this {what} is queued or running; try again when it has finished."
MSG_FAILED = "The edit failed on the server ({error}); nothing was changed."


class JobRefused(Exception):
    """The edit cannot be queued; the message is for the user."""


def _enqueue(job_id: int) -> None:
    from xnatlite.archive.tasks import archive_job_task

    transaction.on_commit(lambda: archive_job_task.delay(job_id))


def _messages(exc: ValidationError) -> str:
    return " ".join(exc.messages)


def archived_session_update_request(*, session: ImageSession, actor: str, label: str | None = None,
                                    subject_label: str | None = None,
                                    project_id: str | None = None) -> ArchiveJob | None:
    """Queue a relabel / move / reassign of ``session``. None when nothing would change. Raises JobRefused."""
    from .services import archived_session_update_check

    try:
        change = archived_session_update_check(session=session, label=label, subject_label=subject_label,
                                               project_id=project_id)
    except ValidationError as exc:
        raise JobRefused(_messages(exc)) from None
    if change is None:
        return None
    new_project, new_label, new_subject = change
    with transaction.atomic():
        ImageSession.objects.select_for_update().filter(pk=session.pk).first()
        if ArchiveJob.objects.filter(session=session, status__in=LIVE).exists() or ArchiveJob.objects.filter(
                subject_id=session.subject_id, status__in=LIVE).exists():
            raise JobRefused(MSG_BUSY.format(what="session"))
        job = ArchiveJob.objects.create(
            op=ArchiveJob.Op.SESSION_UPDATE, project_id=session.project_id, session=session, actor=actor,
            params={"label": new_label, "subject": new_subject, "project": new_project.pk,
                    "old": [session.project_id, session.subject.label, session.label]})
        _enqueue(job.pk)
    return job


def subject_relabel_request(*, subject: Subject, new_label: str, actor: str) -> ArchiveJob | None:
    from .services import subject_relabel_check

    if new_label == subject.label:
        return None
    try:
        subject_relabel_check(subject=subject, new_label=new_label)
    except ValidationError as exc:
        raise JobRefused(_messages(exc)) from None
    with transaction.atomic():
        Subject.objects.select_for_update().filter(pk=subject.pk).first()
        if ArchiveJob.objects.filter(subject=subject, status__in=LIVE).exists() or ArchiveJob.objects.filter(
                session__subject=subject, status__in=LIVE).exists():
            raise JobRefused(MSG_BUSY.format(what="subject"))
        job = ArchiveJob.objects.create(op=ArchiveJob.Op.SUBJECT_RELABEL, project_id=subject.project_id,
                                        subject=subject, actor=actor,
                                        params={"label": new_label, "old": subject.label})
        _enqueue(job.pk)
    return job


# ------------------------------------------------------------------ the job


class _Progress:
    """Counts files done and writes the count at most every half second (and at the end)."""

    def __init__(self, job_id: int):
        self.job_id, self.done, self.last = job_id, 0, 0.0

    def __call__(self) -> None:
        self.done += 1
        now = time.monotonic()
        if now - self.last > 0.5:
            self.last = now
            ArchiveJob.objects.filter(pk=self.job_id).update(done=self.done)


def _lock(job: ArchiveJob):
    from prearchive.services import joblock

    if job.op == ArchiveJob.Op.SUBJECT_RELABEL:
        kind, ident = "archived-subject", job.subject_id
    else:
        kind, ident = "archived-session", job.session_id
    return joblock.job_lock(kind, ident or 0)


def archive_job_run(*, job_id: int) -> str | None:
    """Run one queued job; returns its final status (None: not queued, someone else has it)."""
    from .services import ArchiveEditError, count_files, session_folder

    if not ArchiveJob.objects.filter(pk=job_id, status=Status.QUEUED).update(status=Status.RUNNING,
                                                                           started=timezone.now()):
        return None
    job = ArchiveJob.objects.get(pk=job_id)
    with _lock(job) as got:
        if not got:  # a live job of another worker edits these files: try again later
            ArchiveJob.objects.filter(pk=job_id, status=Status.RUNNING).update(status=Status.QUEUED)
            return Status.QUEUED
        progress = _Progress(job_id)
        try:
            status, error, result = Status.DONE, "", ""
            if job.op == ArchiveJob.Op.SESSION_UPDATE:
                result = _session_update(job, progress, session_folder, count_files)
            else:
                result = _subject_relabel(job, progress, session_folder, count_files)
        except (ArchiveEditError, ValidationError) as exc:
            status, error = Status.FAILED, (_messages(exc) if isinstance(exc, ValidationError) else str(exc))
        except Exception as exc:  # noqa: BLE001 - the job says it failed; the files are as they were
            logger.exception("archive job %s failed", job_id)
            status, error = Status.FAILED, MSG_FAILED.format(error=type(exc).__name__)
        ArchiveJob.objects.filter(pk=job_id).update(status=status, error=error, result=result,
                                                    done=progress.done, finished=timezone.now())
    logger.info("archive job %s (%s): %s, %d file(s)", job_id, job.op, status, progress.done)
    return status


def _session_update(job: ArchiveJob, progress, session_folder, count_files) -> str:
    from .services import ArchiveEditError, archived_session_update

    session = ImageSession.objects.select_related("subject", "project").filter(pk=job.session_id).first()
    if session is None:
        raise ArchiveEditError("The session no longer exists.")
    ArchiveJob.objects.filter(pk=job.pk).update(total=count_files(session_folder(session)))
    p = job.params
    session = archived_session_update(session=session, actor=job.actor, label=p["label"],
                                      subject_label=p["subject"], project_id=p["project"], progress=progress)
    return (f"/data/archive/projects/{session.project_id}/subjects/{session.subject.label}"
            f"/experiments/{session.label}")


def _subject_relabel(job: ArchiveJob, progress, session_folder, count_files) -> str:
    from .services import ArchiveEditError, subject_relabel

    subject = Subject.objects.select_related("project").filter(pk=job.subject_id).first()
    if subject is None:
        raise ArchiveEditError("The subject no longer exists.")
    total = sum(count_files(session_folder(s)) for s in subject.sessions.all())
    ArchiveJob.objects.filter(pk=job.pk).update(total=total)
    subject = subject_relabel(subject=subject, new_label=job.params["label"], actor=job.actor, progress=progress)
    return f"/data/archive/projects/{subject.project_id}/subjects/{subject.label}"


def archive_jobs_recover() -> int:
    """A worker start: a RUNNING job whose lock is free lost its worker; queue it again (its edit starts
    over: partial folders are rewritten, and the database was not changed before the files were switched)."""
    from prearchive.services import joblock

    queued = 0
    for job in ArchiveJob.objects.filter(status=Status.RUNNING):
        kind = "archived-subject" if job.op == ArchiveJob.Op.SUBJECT_RELABEL else "archived-session"
        ident = job.subject_id if job.op == ArchiveJob.Op.SUBJECT_RELABEL else job.session_id
        if joblock.job_lock_free(kind, ident or 0) and ArchiveJob.objects.filter(
                pk=job.pk, status=Status.RUNNING).update(status=Status.QUEUED):
            with transaction.atomic():
                _enqueue(job.pk)
            queued += 1
    return queued


def archive_job_state(job: ArchiveJob) -> dict:
    """What the page and REST show of a job (labels only): status, progress, error, and once done the
    archive URI and page of what it edited."""
    p = job.params or {}
    page = ""
    if job.status == Status.DONE:
        if job.op == ArchiveJob.Op.SESSION_UPDATE:
            page = f"/archive/{p.get('project')}/sessions/{p.get('label')}/"
        else:
            page = f"/archive/{job.project_id}/subjects/{p.get('label')}/"
    return {"id": job.pk, "op": job.op, "status": job.status, "done": job.done, "total": job.total,
            "error": job.error, "result": job.result, "page": page,
            "what": "subject" if job.op == ArchiveJob.Op.SUBJECT_RELABEL else "session",
            "params": {k: v for k, v in p.items() if k != "old"},
            "created": job.created.isoformat() if job.created else None,
            "finished": job.finished.isoformat() if job.finished else None}
