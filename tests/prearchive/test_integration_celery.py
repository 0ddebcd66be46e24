"""A real Celery worker and beat on Redis and PostgreSQL: idle detection, building, late files."""
from __future__ import annotations

import time
from unittest import mock

import pytest
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from tests.dicom_factory import make_dataset

from .conftest import receive

Status = PrearchiveSession.Status
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
IDLE = 3  # seconds (SiteConfig minutes x PREARCHIVE_IDLE_UNIT_SECONDS=1)


def build_delay(seconds):
    def mark(fn):
        fn.build_delay = seconds
        return fn
    return mark


@pytest.fixture
def service_env(service_env, request):
    delay = getattr(request.function, "build_delay", 0)
    return dict(service_env, DJANGO_SETTINGS_MODULE="tests.prearchive.celery_settings",
                XNATLITE_TEST_BUILD_DELAY=str(delay))


@pytest.fixture
def fast_site(settings):
    from xnatlite.selectors import site_config_get
    from xnatlite.services import idle_schedule_sync

    settings.PREARCHIVE_IDLE_UNIT_SECONDS = 1
    config = site_config_get()
    config.enable_sitewide_anonymization_script = False
    config.session_xml_rebuilder_interval = IDLE

    def interval(ms):
        config.session_xml_rebuilder_repeat = ms
        config.save()
        idle_schedule_sync(config=config)
    interval(1000)
    return interval


PROCS: list = []


# The processes start only after fast_site has written the beat entry: a beat whose first read found no
# entries at all misses the first one written after it (django-celery-beat compares change stamps).
@pytest.fixture
def celery_worker(fast_site, celery_worker):
    PROCS.append(celery_worker)
    yield celery_worker
    PROCS.clear()


@pytest.fixture
def celery_beat(fast_site, celery_worker, celery_beat):
    PROCS.append(celery_beat)
    return celery_beat


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    logs = "\n".join(p.text()[-2500:] for p in PROCS)
    rows = list(PrearchiveSession.objects.values("pk", "status", "lastmod"))
    raise AssertionError(f"timed out; sessions {rows}\n{logs}")


def status_of(pk):
    return PrearchiveSession.objects.filter(pk=pk).values_list("status", flat=True).first()


def send(study, n, pause=0.1):
    result = None
    series = {}
    for i in range(n):
        number = 1 + i // 3
        series_uid = series.setdefault(number, generate_uid())
        result = receive(make_dataset(StudyInstanceUID=study, SeriesNumber=number, SeriesInstanceUID=series_uid))
        assert result.ok
        last = time.monotonic()
        if i < n - 1:
            time.sleep(pause)
    return result, last


def test_the_beat_sweep_builds_an_idle_session_within_idle_plus_interval(fast_site, celery_worker, celery_beat):
    # Countdowns off: the beat sweep alone must do it (the safety net).
    with mock.patch("prearchive.tasks.session_idle_countdown_schedule"):
        result, last = send(generate_uid(), 5)
    ready_at = wait_for(lambda: status_of(result.session_id) == Status.READY and time.monotonic(), IDLE + 1 + 2 + 2)
    assert IDLE <= ready_at - last <= IDLE + 1 + 2, ready_at - last
    session = PrearchiveSession.objects.get(pk=result.session_id)
    assert session.file_count == 5 and [s["ID"] for s in session.document["scans"]] == ["1", "2"]


def test_the_countdown_makes_it_ready_within_seconds_of_the_idle_time(fast_site, celery_worker, celery_beat):
    fast_site(60_000)  # the beat sweep runs once a minute: only the countdown can be this quick
    result, last = send(generate_uid(), 4, pause=0.5)  # files keep coming: the countdown re-arms
    ready_at = wait_for(lambda: status_of(result.session_id) == Status.READY and time.monotonic(), IDLE + 5)
    elapsed = ready_at - last
    assert IDLE <= elapsed <= IDLE + 2, elapsed  # a loaded machine gets a second more; the sweep needs 60


@build_delay(1.5)
def test_a_file_arriving_during_the_build_leaves_it_receiving_and_it_is_rebuilt(fast_site, celery_worker,
                                                                                celery_beat):
    study = generate_uid()
    result, _ = send(study, 3)
    wait_for(lambda: status_of(result.session_id) == Status.BUILDING, IDLE + 4)
    late = receive(make_dataset(StudyInstanceUID=study, SeriesNumber=9))
    assert late.status == "stored" and late.session_id == result.session_id
    assert status_of(result.session_id) == Status.RECEIVING_INTERRUPT
    wait_for(lambda: status_of(result.session_id) == Status.RECEIVING, 5)
    wait_for(lambda: status_of(result.session_id) == Status.READY, IDLE + 1 + 2 + 3)
    session = PrearchiveSession.objects.get(pk=result.session_id)
    assert session.file_count == 4 and [s["ID"] for s in session.document["scans"]] == ["1", "9"]
