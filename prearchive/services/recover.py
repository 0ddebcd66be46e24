"""Re-queue jobs whose worker died (status in flight, job lock free) or whose broker message was lost.

Run when a worker starts (every session's files without a row adopted first, reload.sessions_reconcile;
then everything queued is queued again) and by the idle sweep (queued jobs older than
PREARCHIVE_QUEUED_STALE_SECONDS). Queueing a job twice is harmless: every job claims its session with a
conditional UPDATE under the session's job lock, so the second copy finds nothing to do.
- ARCHIVING / MOVING / DELETING, lock free: the job is queued again and resumes from what it finds on disk;
- BUILDING, lock free: back to QUEUED_BUILDING (with the reason) and built again;
- RECEIVING_INTERRUPT, lock free: the interrupted operation's job cleans up (it has a job file), else the
  session is simply RECEIVING again and its idle countdown restarts;
- QUEUED_*: the job is queued again (Redis lost the message, or a killed worker held it)."""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import transaction

from prearchive.models import PrearchiveSession
from prearchive.services.idle import idle_countdown_on_commit
from prearchive.services.joblock import job_lock_free

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status


def _tasks():
    from xnatlite.archive.tasks import session_archive_task, session_delete_task, session_move_task
    from prearchive.tasks import session_build

    return {Status.ARCHIVING: session_archive_task, Status.MOVING: session_move_task,
            Status.DELETING: session_delete_task, Status.QUEUED_ARCHIVING: session_archive_task,
            Status.QUEUED_MOVING: session_move_task, Status.QUEUED_DELETING: session_delete_task,
            Status.QUEUED_BUILDING: session_build, Status.BUILDING: session_build}


QUEUED = (Status.QUEUED_BUILDING, Status.QUEUED_ARCHIVING, Status.QUEUED_MOVING, Status.QUEUED_DELETING)
RUNNING = (Status.BUILDING, Status.ARCHIVING, Status.MOVING, Status.DELETING, Status.RECEIVING_INTERRUPT)
OPS = {"archive": Status.ARCHIVING, "move": Status.MOVING, "delete": Status.DELETING}
MSG_BUILD_INTERRUPTED = "The build was interrupted (its worker stopped); it was queued again."


def jobs_recover(*, stale_after: float | None = None) -> int:
    """Queue again what no live worker is doing. ``stale_after``: only queued jobs whose status is older
    than that many seconds (None: all, as when a worker starts)."""
    from django.utils import timezone

    from prearchive.services.jobfile import job_read

    if stale_after is None:  # a worker starts: first the folders and their rows agree again (issue 16)
        from prearchive.services.reload import sessions_reconcile

        sessions_reconcile()
    tasks = _tasks()
    now = timezone.now()
    queued = PrearchiveSession.objects.filter(status__in=QUEUED)
    if stale_after is not None:
        queued = queued.filter(lastmod__lt=now - timedelta(seconds=stale_after))
    ids = list(PrearchiveSession.objects.filter(status__in=RUNNING).values_list("pk", "status"))
    ids += list(queued.values_list("pk", "status"))
    requeued = 0
    for session_id, status in ids:
        if not job_lock_free("session", session_id):
            continue  # a live worker owns it
        if status == Status.BUILDING:
            if not PrearchiveSession.objects.filter(pk=session_id, status=status).update(
                    status=Status.QUEUED_BUILDING, lastmod=now, error_message=MSG_BUILD_INTERRUPTED):
                continue
            logger.info("prearchive session %s: re-queued an interrupted build (its worker stopped)", session_id)
        elif status == Status.RECEIVING_INTERRUPT:
            session = PrearchiveSession.objects.filter(pk=session_id, status=status).first()
            op = (job_read(session) or {}).get("op") if session is not None else None
            if op in OPS:
                status = OPS[op]  # its job puts the files back and the session RECEIVING
            else:
                if PrearchiveSession.objects.filter(pk=session_id, status=status).update(
                        status=Status.RECEIVING, lastmod=now):
                    logger.info("prearchive session %s: receiving again (its interrupted build stopped)",
                                session_id)
                    idle_countdown_on_commit(session_id)
                continue
        elif status in QUEUED:
            PrearchiveSession.objects.filter(pk=session_id, status=status).update(lastmod=now)
        task = tasks[status]
        transaction.on_commit(lambda t=task, i=session_id: _delay(t, i))
        requeued += 1
    if requeued:
        logger.info("re-queued %d prearchive job(s) whose worker had stopped", requeued)
    return requeued + uploads_recover(stale_after=stale_after)


def uploads_recover(*, stale_after: float | None = None) -> int:
    """The upload routes' jobs: an uploader job (UploadJob) EXTRACTING/IMPORTING or a transfer IMPORTING with
    a free job lock lost its worker (or its message): queued again, it resumes (upload/services.py,
    upload/client/importer.py). Queued uploader jobs are queued again when stale (or at a worker's start)."""
    from django.utils import timezone

    from upload.client.models import Transfer
    from upload.models import UploadJob
    from upload.services import RUNNING_UPLOAD

    now = timezone.now()
    uploads = UploadJob.objects.filter(status__in=RUNNING_UPLOAD + (UploadJob.Status.QUEUED,))
    transfers = Transfer.objects.filter(status=Transfer.Status.IMPORTING)
    if stale_after is not None:
        cutoff = now - timedelta(seconds=stale_after)
        uploads = uploads.filter(created__lt=cutoff)
        transfers = transfers.filter(updated__lt=cutoff)
    requeued = 0
    for job_id in uploads.values_list("pk", flat=True):
        if job_lock_free("upload", str(job_id)):
            transaction.on_commit(lambda i=str(job_id): _send("upload.upload_job_run", i))
            requeued += 1
    for transfer_id in transfers.values_list("pk", flat=True):
        if job_lock_free("transfer", str(transfer_id)):
            transaction.on_commit(lambda i=str(transfer_id): _send("upload.client.transfer_import", i))
            requeued += 1
    if requeued:
        logger.info("re-queued %d upload job(s) whose worker had stopped", requeued)
    return requeued


def _send(name: str, ident: str) -> None:
    from xnatlite.celery import app

    try:
        app.send_task(name, args=[ident])
    except Exception as exc:  # noqa: BLE001 - the broker is away: the next sweep or worker start tries again
        logger.warning("could not re-queue an upload job: %s", type(exc).__name__)


def _delay(task, session_id: int) -> None:
    try:
        task.delay(session_id)
    except Exception as exc:  # noqa: BLE001 - the broker is away: the next sweep or worker start tries again
        logger.warning("could not re-queue the job of prearchive session %s: %s", session_id, type(exc).__name__)
