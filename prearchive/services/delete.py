"""Delete a prearchive session (XNAT ``DELETE .../{p}/{ts}/{folder}``, services/prearchive/delete).

Request: any status -> QUEUED_DELETING (a job's status only while no job is running on the session).
Job: DELETING; the session's files are removed one by one (those it had when the job started), then, in one transaction with the row locked, the row goes if no file
arrived meanwhile; otherwise the newly arrived files stay and the session is RECEIVING.
"""
from __future__ import annotations

import logging
import os

from django.db import transaction
from django.utils import timezone

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import storage
from prearchive.services.idle import idle_countdown_on_commit
from prearchive.services.jobfile import job_read, job_remove, job_write, session_claim, session_dir
from prearchive.services.joblock import job_lock
from xnatlite.services import audit_record

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status
DELETABLE = (Status.READY, Status.CONFLICT, Status.ERROR, Status.RECEIVING)
MSG_BUSY = "Operation already in progress on this prearchive entry."
MSG_GONE = "This prearchive entry no longer exists."


class DeleteError(Exception):
    pass


def session_delete_request(*, session: PrearchiveSession, actor: str) -> None:
    """Queue the delete of a session in any status. A resting one (DELETABLE) is claimed as before; one in
    a job's status (queued, or left BUILDING/ARCHIVING/... by a job that died) is claimed while this holds
    the session's job lock, so no job is running on it: a queued job finds its status gone and skips, a
    dead one's leftovers are deleted with the session. Only a job running right now gives MSG_BUSY."""
    with job_lock("session", session.pk) as free, transaction.atomic():
        claimed = PrearchiveSession.objects.filter(pk=session.pk, status__in=DELETABLE).update(
            status=Status.QUEUED_DELETING, lastmod=timezone.now())
        if not claimed and free:
            claimed = PrearchiveSession.objects.filter(pk=session.pk).update(
                status=Status.QUEUED_DELETING, lastmod=timezone.now())
        if not claimed:
            raise DeleteError(MSG_BUSY if PrearchiveSession.objects.filter(pk=session.pk).exists() else MSG_GONE)
        job_write(session=session, data={"op": "delete", "actor": actor})

        def enqueue(session_id: int = session.pk) -> None:
            from xnatlite.archive.tasks import session_delete_task

            session_delete_task.delay(session_id)

        transaction.on_commit(enqueue)


def session_delete(*, session_id: int) -> str:
    with job_lock("session", session_id) as got:
        if not got:
            return "busy"
        session = session_claim(session_id=session_id, queued=Status.QUEUED_DELETING, running=Status.DELETING)
        if session is None:
            return "skipped"
        job = job_read(session) or {}
        if session.status == Status.RECEIVING_INTERRUPT and job.get("op") == "delete":
            PrearchiveSession.objects.filter(pk=session_id, status=Status.RECEIVING_INTERRUPT).update(
                status=Status.RECEIVING, lastmod=timezone.now())
            job_remove(session)
            return "interrupted"
        if session.status != Status.DELETING:
            return "skipped"
        base = session_dir(session)
        rows = list(PrearchiveFile.objects.filter(session=session).values_list("pk", "relative_path"))
        for _pk, rel in rows:
            try:
                os.unlink(base / rel)
            except FileNotFoundError:
                pass
        PrearchiveFile.objects.filter(pk__in=[pk for pk, _ in rows]).delete()
        with transaction.atomic():
            row = PrearchiveSession.objects.select_for_update().filter(pk=session_id).first()
            remaining = PrearchiveFile.objects.filter(session_id=session_id).count()
            if row is not None and row.status == Status.DELETING and remaining == 0:
                row.delete()
                outcome = "deleted"
            else:
                PrearchiveSession.objects.filter(pk=session_id).update(
                    status=Status.RECEIVING, file_count=remaining, lastmod=timezone.now())
                outcome = "interrupted"
            audit_record(actor=job.get("actor", ""), action="prearchive_delete", project_id=session.project_id or "",
                         subject_label=session.subject, session_label=session.name, prearchive=session.uri,
                         prearchive_id=session.pk,
                         files=len(rows))
        job_remove(session)
        if outcome == "deleted":
            storage.session_folder_remove(base)
            try:
                base.parent.rmdir()
            except OSError:
                pass
        else:  # files arrived meanwhile: they stay, and the idle checker builds the session again
            idle_countdown_on_commit(session_id)
        logger.info("prearchive session %s: %s (%d file(s))", session_id, outcome, len(rows))
        return outcome
