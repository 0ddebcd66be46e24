"""Re-queue review jobs whose worker died (status in flight, job lock free). Run when a worker starts."""
from __future__ import annotations

import logging

from django.db import transaction

from prearchive.models import PrearchiveSession
from prearchive.services.joblock import job_lock_free

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status


def _tasks():
    from prearchive.archive_tasks import session_archive_task, session_delete_task, session_move_task

    return {Status.ARCHIVING: session_archive_task, Status.MOVING: session_move_task,
            Status.DELETING: session_delete_task}


def jobs_recover() -> int:
    tasks = _tasks()
    ids = list(PrearchiveSession.objects.filter(status__in=list(tasks)).values_list("pk", "status"))
    requeued = 0
    for session_id, status in ids:
        if not job_lock_free("session", session_id):
            continue  # a live worker owns it
        task = tasks[status]
        transaction.on_commit(lambda t=task, i=session_id: t.delay(i))
        requeued += 1
    if requeued:
        logger.info("re-queued %d prearchive job(s) whose worker had stopped", requeued)
    return requeued
