"""Celery tasks of the prearchive: thin (ids in, load, call a service).

- ``prearchive.sessions_idle_sweep`` (beat, every Session Idle Check Interval): the safety net.
- ``prearchive.session_idle_check`` (countdown per session): makes a session READY within about a second
  of its idle time, whatever the check interval.
- ``prearchive.session_build``: builds one session.
"""
from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError)


@shared_task(name="prearchive.sessions_idle_sweep", ignore_result=True, acks_late=True)
def sessions_idle_sweep() -> int:
    from prearchive.services.idle import sessions_idle_sweep as sweep

    return sweep()


@shared_task(name="prearchive.session_idle_check", ignore_result=True, acks_late=True)
def session_idle_check(session_id: int) -> None:
    from prearchive.services.idle import session_idle_check as check

    check(session_id=session_id)


@shared_task(name="prearchive.session_build", bind=True, ignore_result=True, acks_late=True, max_retries=5)
def session_build(self, session_id: int) -> None:
    from prearchive.services.builder import session_build_claimed

    try:
        session_build_claimed(session_id=session_id)
    except TRANSIENT as exc:
        raise self.retry(exc=exc, countdown=min(60, 2 ** self.request.retries))


def session_idle_countdown_schedule(*, session_id: int, delay: float | None = None) -> None:
    """Queue the per-session idle check for when the session's idle time will have passed."""
    from prearchive.services.idle import idle_seconds

    countdown = idle_seconds() if delay is None else delay
    session_idle_check.apply_async((session_id,), countdown=max(0.0, countdown))


def session_build_enqueue(*, session_id: int) -> None:
    session_build.delay(session_id)


@shared_task(name="prearchive.reload", ignore_result=True, acks_late=True)
def prearchive_reload() -> None:
    from prearchive.services.reload import prearchive_reload as reload

    reload()


def reload_on_startup(**kwargs) -> None:
    """worker_ready: when reloadPrearcDatabaseOnStartup is set, reconcile the database with the tree."""
    try:
        from xnatlite.selectors import site_config_get

        if site_config_get().reload_prearc_database_on_startup:
            prearchive_reload.delay()
    except Exception as exc:  # noqa: BLE001 - never stop a worker from starting
        logger.warning("prearchive reload on start-up not queued: %s", type(exc).__name__)
