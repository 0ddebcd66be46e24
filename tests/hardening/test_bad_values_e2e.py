"""Issue 16 item 4 end to end, with a real Celery worker and beat on Redis and PostgreSQL: a file with
StudyDate 20240230 and StudyTime 996061 sent through REST import (gradual-DICOM) is built by the idle sweep
into READY with warnings (it used to raise on every sweep and stay BUILDING, requeued as "its worker
stopped"); a build that fails ends in ERROR with its reason; the owner rebuilds it and deletes it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings

from prearchive.models import PrearchiveSession
from tests.conftest import redis_flush
from tests.dicom_factory import make_dataset, write_dataset
from tests.upload.helpers import basic

from .conftest import beat, fast_site, wait_until, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = PrearchiveSession.Status
OWNER = ("olivia", "olivia-pass-1")


def _status(pk: int) -> str | None:
    return PrearchiveSession.objects.filter(pk=pk).values_list("status", flat=True).first()


def _service(client, operation: str, session: PrearchiveSession, **params):
    query = "&".join(f"{k}={v}" for k, v in dict(src=session.uri, **params).items())
    return client.post(f"/data/services/prearchive/{operation}", data=query,
                       content_type="application/x-www-form-urlencoded", **basic(*OWNER))


def test_bad_dates_build_with_warnings_a_failed_build_errors_and_the_owner_rebuilds_and_deletes(
        client, project, owner, fault_env, tmp_path, procs):
    fast_site(idle=2, sweep_ms=1000)
    redis_flush()
    procs.append(worker(fault_env, tmp_path / "worker.log"))
    procs.append(beat(fault_env, tmp_path / "beat.log"))

    path = write_dataset(make_dataset(StudyDate="20240230", StudyTime="996061", SeriesDate="20241301"),
                         tmp_path / "bad.dcm")
    r = client.post("/data/services/import?PROJECT_ID=PROJ1&SUBJECT_ID=B1&EXPT_LABEL=B1_MR",
                    data=path.read_bytes(), content_type="application/dicom", **basic(*OWNER))
    assert r.status_code == 200, r.content
    session = PrearchiveSession.objects.get()
    wait_until(lambda: _status(session.pk) == S.READY, timeout=90, what="READY after the idle time", procs=procs)
    session.refresh_from_db()
    assert session.scan_date is None and session.scan_time is None and session.error_message == ""
    warnings = session.document["warnings"]
    assert [w.split(" is not")[0] for w in warnings] == ["StudyDate", "StudyTime", "Scan 1: SeriesDate"]

    # A build that fails (its document cannot be written: a directory is in the way) ends in ERROR.
    base = Path(str(settings.PREARCHIVE_ROOT)) / session.relative_dir
    blocker = base.with_name(base.name + ".xml")
    blocker.unlink()
    blocker.mkdir()
    assert _service(client, "rebuild", session).status_code == 200
    wait_until(lambda: _status(session.pk) == S.ERROR, timeout=60, what="ERROR after the failed build",
               procs=procs)
    session.refresh_from_db()
    assert "writing the session document failed (IsADirectoryError)" in session.error_message
    assert "worker stopped" not in session.error_message

    # The owner fixes the cause and rebuilds the ERROR session.
    shutil.rmtree(blocker)
    assert _service(client, "rebuild", session).status_code == 200
    wait_until(lambda: _status(session.pk) == S.READY, timeout=60, what="READY after the rebuild", procs=procs)
    assert blocker.is_file()

    # And deletes it (through the worker: async).
    assert _service(client, "delete", session).status_code == 200
    wait_until(lambda: not PrearchiveSession.objects.filter(pk=session.pk).exists() and not base.exists(),
               timeout=60, what="the session and its folder deleted", procs=procs)  # the row goes first
