"""The idle checker: the beat sweep (safety net) and the per-session countdown."""
from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from prearchive import tasks
from prearchive.models import PrearchiveSession
from prearchive.services import idle
from tests.dicom_factory import make_dataset
from xnatlite.models import SchedulerHeartbeat

from .conftest import receive

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db


def age(minutes: float, **filters):
    PrearchiveSession.objects.filter(**filters).update(lastmod=timezone.now() - timedelta(minutes=minutes))


def test_the_sweep_claims_only_sessions_idle_longer_than_the_idle_time(site, django_capture_on_commit_callbacks):
    site.session_xml_rebuilder_interval = 5
    site.save()
    old, fresh = receive(make_dataset()), receive(make_dataset())
    age(6, pk=old.session_id)
    age(4, pk=fresh.session_id)
    with mock.patch.object(tasks.session_build, "delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        assert tasks.sessions_idle_sweep() == 1
    delay.assert_called_once_with(old.session_id)
    assert PrearchiveSession.objects.get(pk=old.session_id).status == Status.QUEUED_BUILDING
    assert PrearchiveSession.objects.get(pk=fresh.session_id).status == Status.RECEIVING
    assert SchedulerHeartbeat.objects.get(name="prearchive.sessions_idle_sweep").runs == 1


def test_the_idle_time_is_read_at_run_time(site):
    receive(make_dataset())
    age(3)
    with mock.patch.object(tasks.session_build, "delay"):
        assert tasks.sessions_idle_sweep() == 0
        site.session_xml_rebuilder_interval = 2
        site.save()
        assert tasks.sessions_idle_sweep() == 1


def test_a_second_sweep_does_not_claim_again(site):
    receive(make_dataset())
    age(10)
    with mock.patch.object(tasks.session_build, "delay"):
        assert tasks.sessions_idle_sweep() == 1
        assert tasks.sessions_idle_sweep() == 0


def test_uploader_and_prevent_auto_commit_sessions_are_left_alone(site):
    receive(make_dataset(), params={"SOURCE": "uploader"})
    receive(make_dataset(), params={"prevent_auto_commit": "true"})
    age(10)
    with mock.patch.object(tasks.session_build, "delay"):
        assert tasks.sessions_idle_sweep() == 0


def test_the_countdown_is_scheduled_on_the_first_file_only(site, django_capture_on_commit_callbacks):
    from pydicom.uid import generate_uid

    study = generate_uid()
    with mock.patch.object(tasks.session_idle_check, "apply_async") as apply_async, \
            django_capture_on_commit_callbacks(execute=True):
        receive(make_dataset(StudyInstanceUID=study))
        receive(make_dataset(StudyInstanceUID=study))
    assert apply_async.call_count == 1
    assert apply_async.call_args.kwargs["countdown"] == 300


def test_the_countdown_reschedules_while_files_arrive_and_builds_when_idle(site):
    result = receive(make_dataset())
    with mock.patch.object(tasks.session_idle_check, "apply_async") as apply_async:
        assert idle.session_idle_check(session_id=result.session_id) == "rescheduled"
    assert 299 < apply_async.call_args.kwargs["countdown"] <= 300.1
    age(5.01)
    assert idle.session_idle_check(session_id=result.session_id) == "built"
    assert PrearchiveSession.objects.get().status == Status.READY
    assert idle.session_idle_check(session_id=result.session_id) == "not-receiving"


def test_idle_unit_setting_turns_minutes_into_test_seconds(site, settings):
    settings.PREARCHIVE_IDLE_UNIT_SECONDS = 1
    site.session_xml_rebuilder_interval = 3
    site.save()
    assert idle.idle_seconds() == 3
