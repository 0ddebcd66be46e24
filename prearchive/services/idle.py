"""The idle checker: sessions that stopped receiving get built.

Two mechanisms, both claiming with conditional UPDATEs so that a session is never built twice:
- the per-session countdown (``session_idle_check``), scheduled when a session starts or restarts
  receiving; it fires at ``lastmod + idle time`` and re-schedules itself while files keep coming, so a
  session turns READY about a second after its idle time, whatever the check interval;
- the beat sweep (``sessions_idle_sweep``) at the Session Idle Check Interval: XNAT's SessionXMLRebuilder,
  the safety net when a countdown was lost (broker restart, worker killed).
Both read the Session Idle Time from the site settings at run time. Like XNAT, sessions with
``prevent_auto_commit`` or SOURCE ``uploader`` are left for their uploader to commit.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from prearchive.models import PrearchiveSession

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status

SWEEP_NAME = "prearchive.sessions_idle_sweep"
SWEEP_BATCH = 500
COUNTDOWN_SLACK = 0.05  # seconds past the deadline, so the check finds the session idle


def idle_countdown_on_commit(session_id: int) -> None:
    """Once the caller's transaction commits, schedule the countdown of a session that starts or restarts
    receiving (prearchive.session_idle_check). The beat sweep is the safety net if the broker is away."""

    def schedule() -> None:
        try:
            from prearchive.tasks import session_idle_countdown_schedule

            session_idle_countdown_schedule(session_id=session_id)
        except Exception as exc:  # noqa: BLE001 - the beat sweep is the safety net
            logger.warning("could not schedule the idle check of session %s: %s", session_id,
                           type(exc).__name__)

    transaction.on_commit(schedule)


def idle_seconds(config=None) -> float:
    """The Session Idle Time in seconds. SiteConfig holds minutes (XNAT's unit); the setting
    PREARCHIVE_IDLE_UNIT_SECONDS (default 60) exists so integration tests can run on seconds."""
    if config is None:
        from xnatlite.selectors import site_config_get

        config = site_config_get()
    unit = float(getattr(settings, "PREARCHIVE_IDLE_UNIT_SECONDS", 60))
    return float(config.session_xml_rebuilder_interval) * unit


def _auto_buildable():
    return (PrearchiveSession.objects.filter(status=Status.RECEIVING, prevent_auto_commit=False)
            .exclude(source="uploader"))


def _enqueue_build(session_id: int) -> None:
    from prearchive.tasks import session_build_enqueue

    session_build_enqueue(session_id=session_id)


def sessions_idle_claim(*, now=None, limit: int = SWEEP_BATCH) -> list[int]:
    """Flip up to ``limit`` idle RECEIVING sessions to QUEUED_BUILDING; builds are queued on commit.
    Rows locked by another sweep or by an intake in progress are skipped, not waited for."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=idle_seconds())
    with transaction.atomic():
        ids = list(_auto_buildable().filter(lastmod__lte=cutoff).order_by("lastmod")
                   .select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
        if not ids:
            return []
        claimed = list(PrearchiveSession.objects.filter(pk__in=ids, status=Status.RECEIVING, lastmod__lte=cutoff)
                       .values_list("pk", flat=True))
        PrearchiveSession.objects.filter(pk__in=claimed).update(status=Status.QUEUED_BUILDING, lastmod=now)
        for pk in claimed:
            transaction.on_commit(partial(_enqueue_build, pk))
    logger.info("idle sweep queued %d session build(s)", len(claimed))
    return claimed


def sessions_idle_sweep() -> int:
    """The beat job. Records its heartbeat, then claims idle sessions in bounded batches."""
    from xnatlite.services import heartbeat_record

    heartbeat_record(name=SWEEP_NAME)
    total = 0
    for _ in range(10):
        claimed = sessions_idle_claim()
        total += len(claimed)
        if len(claimed) < SWEEP_BATCH:
            break
    # Jobs whose worker died or whose broker message was lost (Redis restarted): queued again.
    from prearchive.services.recover import jobs_recover

    jobs_recover(stale_after=float(getattr(settings, "PREARCHIVE_QUEUED_STALE_SECONDS", 300)))
    return total


def session_idle_check(*, session_id: int) -> str:
    """The per-session countdown. Returns what it did: "gone", "not-receiving", "rescheduled", "lost" (another
    claimant won) or "built"."""
    session = _auto_buildable().filter(pk=session_id).only("pk", "lastmod", "status").first()
    if session is None:
        return "not-receiving" if PrearchiveSession.objects.filter(pk=session_id).exists() else "gone"
    deadline = session.lastmod + timedelta(seconds=idle_seconds())
    remaining = (deadline - timezone.now()).total_seconds()
    if remaining > 0:
        from prearchive.tasks import session_idle_countdown_schedule

        session_idle_countdown_schedule(session_id=session_id, delay=remaining + COUNTDOWN_SLACK)
        return "rescheduled"
    claimed = PrearchiveSession.objects.filter(
        pk=session_id, status=Status.RECEIVING, lastmod=session.lastmod
    ).update(status=Status.QUEUED_BUILDING)
    if not claimed:
        # A file arrived since the read (lastmod moved) or another claimant won: check again, which
        # re-schedules the countdown if the session is still receiving.
        return session_idle_check(session_id=session_id) if _auto_buildable().filter(pk=session_id).exists() \
            else "lost"
    from prearchive.services.builder import session_build_claimed

    session_build_claimed(session_id=session_id)
    return "built"
