"""Rebuild: hand a resting session back to the builder (QUEUED_BUILDING, then the intake engineer's
``prearchive.session_build`` task)."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from prearchive.models import PrearchiveSession
from xnatlite.services import audit_record

Status = PrearchiveSession.Status
REBUILDABLE = (Status.RECEIVING, Status.READY, Status.CONFLICT, Status.ERROR)
MSG_BUSY = "Operation already in progress on this prearchive entry."


class RebuildError(Exception):
    pass


def session_rebuild_request(*, session: PrearchiveSession, actor: str = "") -> None:
    with transaction.atomic():
        claimed = PrearchiveSession.objects.filter(pk=session.pk, status__in=REBUILDABLE).update(
            status=Status.QUEUED_BUILDING, lastmod=timezone.now())
        if not claimed:
            raise RebuildError(MSG_BUSY)
        audit_record(actor=actor, action="prearchive_rebuild", project_id=session.project_id or "",
                     session_label=session.name)

        def enqueue(session_id: int = session.pk) -> None:
            from prearchive.tasks import session_build_enqueue

            session_build_enqueue(session_id=session_id)

        transaction.on_commit(enqueue)
