"""The Celery application: configured from Django settings (CELERY_ namespace)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xnatlite.settings")

app = Celery("xnatlite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _survive_broker_loss() -> None:
    """celery/kombu 5.7 on Redis: when the broker goes away while this worker holds an unacknowledged
    message (a countdown task such as the per-session idle check), closing the channel tries to hand the
    message back through a connection that is already gone, raises AttributeError, and celery calls that
    "Unrecoverable error" and exits the worker. The message stays in Redis's unacked set (redelivered after
    the visibility timeout; jobs_recover re-queues what a lost message would have done), so skipping the
    hand-back loses nothing, and the worker reconnects when Redis is back. Found by
    tests/hardening/test_faults_services.py (Redis stopped during intake)."""
    try:
        from kombu.transport import redis as kombu_redis
    except ImportError:  # pragma: no cover - the redis client is not installed (embedded default)
        return
    original = kombu_redis.QoS.restore_unacked
    if getattr(original, "_xnatlite_safe", False):
        return

    def restore_unacked(self, client=None):
        try:
            return original(self, client)
        except AttributeError:
            import logging

            logging.getLogger(__name__).warning("broker connection lost: unacknowledged messages left to the "
                                                "broker's visibility timeout")
            return None

    restore_unacked._xnatlite_safe = True
    kombu_redis.QoS.restore_unacked = restore_unacked


_survive_broker_loss()
