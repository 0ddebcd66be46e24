"""A real Celery worker and beat on Redis and PostgreSQL: the idle checker runs at the Session Idle Check
Interval, and a change of the interval reaches the running beat without a restart."""
from __future__ import annotations

import json
import time

import pytest

from tests.xnatlite.test_site_config_api import basic
from xnatlite.models import SchedulerHeartbeat
from xnatlite.services import IDLE_SWEEP_TASK, idle_schedule_sync

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _runs() -> int:
    beat = SchedulerHeartbeat.objects.filter(name=IDLE_SWEEP_TASK).first()
    return beat.runs if beat else 0


def test_interval_change_reaches_running_beat(admin_user, client, service_env, celery_worker, tmp_path):
    from tests.conftest import start_beat

    client.post("/xapi/siteConfig/sessionXmlRebuilderRepeat", "3600000", content_type="text/plain",
                **basic("admin", "admin-pass-1"))
    idle_schedule_sync()
    beat = start_beat(service_env, tmp_path / "beat.log")
    try:
        time.sleep(4)
        before = _runs()
        assert before <= 1  # at most the first run at start-up, then nothing for an hour
        response = client.post("/xapi/siteConfig", json.dumps({"sessionXmlRebuilderRepeat": 500}),
                               content_type="application/json", **basic("admin", "admin-pass-1"))
        assert response.status_code == 200
        deadline = time.monotonic() + 15
        while _runs() < before + 4 and time.monotonic() < deadline:
            time.sleep(0.25)
        assert _runs() >= before + 4, beat.text()[-2000:]
        assert "prearchive.sessions_idle_sweep" in celery_worker.text()
    finally:
        beat.stop()
