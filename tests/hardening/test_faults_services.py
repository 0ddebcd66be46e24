"""PostgreSQL restarted while the DICOM receiver (a real ``manage.py run_dicom_scp``) takes files from a real
peer, and Redis stopped during intake: every file the sender was told is stored is in the prearchive
exactly once, every other file got a failure status, a resend after the restart stores them, and every
session ends built (no session waits for a broker message that Redis lost)."""
from __future__ import annotations

import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveFile, PrearchiveSession
from tests.conftest import redis_flush
from tests.dicom_factory import make_dataset

from . import scu
from .conftest import (assert_consistent, beat, fast_site, free_port, pg_start, pg_stop, receiver, redis_start,
                       redis_stop, tree_files, wait_until, worker)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = PrearchiveSession.Status


def study(*, label: str, count: int, series: int = 2) -> list:
    """Files routed by their comments (Project/Subject/Session assignments), as a scanner sends them."""
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    return [make_dataset(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uids[i % series],
                         SeriesNumber=i % series + 1, InstanceNumber=i + 1,
                         PatientComments=f"Project:PROJ1 Subject:{label} Session:{label}_MR")
            for i in range(count)]


def stored_once(sops: set[str]) -> None:
    """Each instance has one row and one file (rows follow their files within a moment: see above)."""
    wait_until(lambda: PrearchiveFile.objects.filter(sop_instance_uid__in=sops).count() >= len(sops), timeout=15,
               every=0.1, what="the rows")
    rows = list(PrearchiveFile.objects.filter(sop_instance_uid__in=sops).values_list("sop_instance_uid", flat=True))
    assert len(rows) == len(set(rows)) == len(sops), (len(rows), len(set(rows)), len(sops))
    names = [p.name for p in tree_files(Path(settings.PREARCHIVE_ROOT)) if p.suffix == ".dcm"]
    assert len(names) == len(set(names))


def test_postgresql_restart_while_the_receiver_takes_files(project, service_env, postgres_restartable,
                                                           tmp_path, procs):
    fast_site(idle=3600)
    port = free_port()
    # Two receiver processes (the PostgreSQL crash of test_acknowledged.py runs against one).
    scp = receiver(service_env, tmp_path / "receiver.log", port, processes=2)
    procs.append(scp)
    files = study(label="PGR1", count=300) + study(label="PGR2", count=300)
    by_sop = {str(ds.SOPInstanceUID): ds for ds in files}
    outcome = scu.Outcome()
    threads = scu.send_threads([files[:300], files[300:]], port=port, outcome=outcome, pause=0.004)
    wait_until(lambda: outcome.count() >= 120, timeout=60, every=0.01, what="files flowing", procs=[scp])
    pg_stop()
    stopped_at = outcome.count()
    time.sleep(1.5)
    pg_start()
    for t in threads:
        t.join(timeout=180)
    assert not any(t.is_alive() for t in threads)
    connections.close_all()

    assert len(outcome.status) == 600
    refused = outcome.refused
    assert refused, "no file was sent while PostgreSQL was down: the test missed its window"
    assert outcome.count() > stopped_at and len(outcome.succeeded) > 120
    assert {outcome.status[s] for s in refused} <= {0xA700, 0xC211, None}, {outcome.status[s] for s in refused}
    # Rows follow their files within DICOM_RECEIVER_ROW_BATCH_SECONDS, or a retry a second after the
    # database is back (services/rowbatch.py); the files themselves were in place before Success.
    wait_until(lambda: outcome.succeeded <= set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True)),
               timeout=15, every=0.2, what="a row for every file the sender was told is stored", procs=[scp])
    stored = set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    stored_once(stored)
    assert scp.popen.poll() is None, "the receiver died"
    assert "ended (" not in scp.text(), "a receiver process died"
    assert_consistent()  # in particular: a refused file left no orphan behind

    # The sender retries what was refused: now everything is stored, each instance once.
    retry = scu.Outcome()
    scu.send([by_sop[s] for s in sorted(refused)], port=port, outcome=retry)
    assert retry.refused == set(), {retry.status[s] for s in retry.refused}
    stored_once(set(by_sop))
    assert PrearchiveFile.objects.count() == 600
    assert_consistent()


def test_redis_stopped_during_intake_every_session_still_builds(project, fault_env, redis_restartable,
                                                                 tmp_path, procs):
    fast_site(idle=2, sweep_ms=1000)
    redis_flush()
    port = free_port()
    procs.append(worker(fault_env, tmp_path / "worker.log"))
    procs.append(beat(fault_env, tmp_path / "beat.log"))
    scp = receiver(fault_env, tmp_path / "receiver.log", port)
    procs.append(scp)
    studies = [study(label=f"RDS{i}", count=40) for i in range(6)]
    outcome = scu.Outcome()

    scu.send(studies[0] + studies[1], port=port, outcome=outcome)
    redis_stop()
    scu.send(studies[2] + studies[3], port=port, outcome=outcome)  # intake goes on without the broker
    time.sleep(3)  # idle while Redis is away: their countdowns and sweeps are lost
    redis_start()
    scu.send(studies[4] + studies[5], port=port, outcome=outcome)
    assert len(outcome.status) == 240 and outcome.refused == set()

    def all_ready() -> bool:
        connections.close_all()
        statuses = list(PrearchiveSession.objects.values_list("status", flat=True))
        return len(statuses) == 6 and set(statuses) == {S.READY}

    wait_until(all_ready, timeout=120, every=0.5, what="every session READY", procs=procs)
    assert all(p.popen.poll() is None for p in procs), "a process died when Redis went away"
    for session in PrearchiveSession.objects.all():
        assert session.file_count == 40 and len(session.document["scans"]) == 2
    stored_once(set(outcome.status))
    assert_consistent()
