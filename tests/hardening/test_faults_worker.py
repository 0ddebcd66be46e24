"""The worker SIGKILLed midway through a build, an archive and a move, then a new worker started: each job
ends exactly once (or goes back to where it was), with every file kept once, no session left in a transient
status, no duplicate archive copy and no orphan file."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from prearchive.models import PrearchiveFile, PrearchiveSession
from tests.conftest import redis_flush
from xnatlite.models import AuditEvent, ImageSession, Project

from .conftest import assert_consistent, fast_site, sop_of, tree_files, wait_until, worker
from .helpers import PROJECT_SCRIPT, build_now, prearchive_sops, send

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = PrearchiveSession.Status


@pytest.fixture
def site(db):
    return fast_site(idle=3600)  # nothing builds by itself: each test starts its job explicitly


def status_of(pk: int) -> str | None:
    return PrearchiveSession.objects.filter(pk=pk).values_list("status", flat=True).first()


def test_worker_killed_during_a_build_is_rebuilt_by_the_next_worker(site, project, fault_env, tmp_path, procs):
    from prearchive.services.rebuild import session_rebuild_request

    study, sops = send(project="PROJ1", subject="S1", label="S1_MR1", series=((1, 150), (2, 150)))
    session = PrearchiveSession.objects.get(tag=study)
    redis_flush()
    victim = worker(fault_env, tmp_path / "victim.log", name="victim", build_delay=60)
    procs.append(victim)
    session_rebuild_request(session=session, actor="mike")
    wait_until(lambda: status_of(session.pk) == S.BUILDING, timeout=30, every=0.02, what="BUILDING",
               procs=[victim])
    victim.kill()
    assert status_of(session.pk) == S.BUILDING  # the build died with its worker

    rescuer = worker(fault_env, tmp_path / "rescuer.log", name="rescuer")
    procs.append(rescuer)
    wait_until(lambda: status_of(session.pk) == S.READY, timeout=60, what="READY after the restart",
               procs=[rescuer])
    session.refresh_from_db()
    assert session.file_count == 300 and prearchive_sops(session) == sops
    assert len(session.document["scans"]) == 2
    assert "interrupted build" in rescuer.text()  # the recovery says why it touched the session
    assert_consistent()


def test_worker_killed_during_an_archive_finishes_it_exactly_once(site, project, fault_env, tmp_path, procs):
    from prearchive.services.archive import session_archive_request

    project.anon_script, project.anon_script_enabled = PROJECT_SCRIPT, True
    project.save()
    study, sops = send(project="PROJ1", subject="S2", label="S2_MR1", series=((1, 150), (2, 150)), rows=96)
    session = PrearchiveSession.objects.get(tag=study)
    assert build_now(session.pk) == S.READY
    redis_flush()
    victim = worker(fault_env, tmp_path / "victim.log", name="victim")
    procs.append(victim)
    session.refresh_from_db()
    session_archive_request(session=session, actor="mike", subject="SUBJ_02", label="SUBJ_02_MR1")
    partial = Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001" / f".SUBJ_02_MR1.partial-{session.pk}"

    def written() -> int:
        return sum(1 for p in partial.rglob("*.dcm")) if partial.exists() else 0

    wait_until(lambda: written() >= 40, timeout=60, every=0.01, what="the archive to be midway", procs=[victim])
    victim.kill()
    assert 0 < written() < 300
    assert status_of(session.pk) == S.ARCHIVING and not ImageSession.objects.exists()

    rescuer = worker(fault_env, tmp_path / "rescuer.log", name="rescuer")
    procs.append(rescuer)
    wait_until(lambda: not PrearchiveSession.objects.filter(pk=session.pk).exists(), timeout=90,
               what="the archive to finish", procs=[rescuer])
    record = ImageSession.objects.get()
    files = [p for p in tree_files(Path(settings.ARCHIVE_ROOT) / record.archive_path) if p.suffix == ".dcm"]
    archived = [sop_of(p) for p in files]
    assert len(archived) == 300 and set(archived) == sops  # none lost, none twice
    assert AuditEvent.objects.filter(action="session_archive").count() == 1
    counts = assert_consistent()
    assert counts["prearchive_files"] == 0


def test_worker_killed_during_a_move_finishes_the_move(site, project, fault_env, tmp_path, procs):
    from prearchive.services.move import session_move_request

    Project.objects.create(id="PROJ2", name="Project Two", prearchive_code=0)
    study, sops = send(project="PROJ1", subject="S3", label="S3_MR1", series=((1, 120), (2, 80)))
    session = PrearchiveSession.objects.get(tag=study)
    assert build_now(session.pk) == S.READY
    session.refresh_from_db()
    old_dir = Path(settings.PREARCHIVE_ROOT) / session.relative_dir
    new_dir = Path(settings.PREARCHIVE_ROOT) / "PROJ2" / session.timestamp / session.folder_name
    flag = tmp_path / "paused"
    redis_flush()
    # The victim stops right after renaming the session folder, before the database says so, and dies there.
    victim = worker(fault_env, tmp_path / "victim.log", name="victim",
                    pause_after="prearchive.services.move:_merge_move", flag=flag)
    procs.append(victim)
    session_move_request(session=session, new_project="PROJ2", actor="mike")
    wait_until(flag.exists, timeout=30, every=0.02, what="the move to be midway", procs=[victim])
    victim.kill()
    assert status_of(session.pk) == S.MOVING
    assert new_dir.is_dir() and not old_dir.exists()
    assert PrearchiveSession.objects.get(pk=session.pk).project_id == "PROJ1"

    rescuer = worker(fault_env, tmp_path / "rescuer.log", name="rescuer")
    procs.append(rescuer)
    wait_until(lambda: status_of(session.pk) == S.READY, timeout=60, what="READY in the new project",
               procs=[rescuer])
    session.refresh_from_db()
    assert session.project_id == "PROJ2" and prearchive_sops(session) == sops
    assert PrearchiveFile.objects.filter(session=session).count() == 200
    assert AuditEvent.objects.filter(action="prearchive_move").count() == 1
    assert_consistent()
