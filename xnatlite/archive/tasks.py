"""Celery tasks of the review actions: archive, move, delete. Thin: the session id in, a service called.

acks_late: a message is acknowledged only after the job finished, and each job resumes from what it finds
(see services/archive.py), so a redelivered message completes the job exactly once. A worker killed midway
holds a broker message that Redis gives back only after its visibility timeout; so each worker, when it
starts, also re-queues the jobs whose worker is gone (status ARCHIVING/MOVING/DELETING with a free job lock).
"""
from __future__ import annotations

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, OSError)


def _retry(task, exc: Exception):
    return task.retry(exc=exc, countdown=min(60, 2 ** task.request.retries))


@shared_task(name="prearchive.session_archive", bind=True, ignore_result=True, acks_late=True, max_retries=8)
def session_archive_task(self, session_id: int) -> str:
    from prearchive.services.archive import session_archive

    try:
        return session_archive(session_id=session_id)
    except TRANSIENT as exc:
        raise _retry(self, exc)


@shared_task(name="prearchive.session_move", bind=True, ignore_result=True, acks_late=True, max_retries=8)
def session_move_task(self, session_id: int) -> str:
    from prearchive.services.move import session_move

    try:
        return session_move(session_id=session_id)
    except TRANSIENT as exc:
        raise _retry(self, exc)


@shared_task(name="prearchive.session_delete", bind=True, ignore_result=True, acks_late=True, max_retries=8)
def session_delete_task(self, session_id: int) -> str:
    from prearchive.services.delete import session_delete

    try:
        return session_delete(session_id=session_id)
    except TRANSIENT as exc:
        raise _retry(self, exc)


@shared_task(name="xnatlite.archive_job", bind=True, ignore_result=True, acks_late=True, max_retries=8)
def archive_job_task(self, job_id: int) -> str | None:
    """A relabel / move / subject relabel of archived data (xnatlite/archive/jobs.py)."""
    from xnatlite.archive.jobs import archive_job_run

    try:
        status = archive_job_run(job_id=job_id)
    except TRANSIENT as exc:
        raise _retry(self, exc)
    if status == "QUEUED":  # another live job holds these files: run again shortly
        raise self.retry(countdown=2)
    return status


@shared_task(name="prearchive.jobs_recover", ignore_result=True, acks_late=True)
def jobs_recover_task() -> int:
    from prearchive.services.recover import jobs_recover

    return jobs_recover()


@shared_task(name="xnatlite.archive_jobs_recover", ignore_result=True, acks_late=True)
def archive_jobs_recover_task() -> int:
    from xnatlite.archive.jobs import archive_jobs_recover

    return archive_jobs_recover()


@worker_ready.connect
def _recover_on_start(sender=None, **kwargs) -> None:
    try:
        jobs_recover_task.delay()
        archive_jobs_recover_task.delay()
    except Exception as exc:  # noqa: BLE001 - recovery is best effort; a stuck job shows on the page
        logger.warning("could not queue the job recovery: %s", type(exc).__name__)
