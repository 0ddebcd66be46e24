"""End to end with a real Celery worker on Redis and PostgreSQL: files in, READY, archived through the
reviewer's page and through /data/services/archive; every archived file read back; and the fault test: the
worker is SIGKILLed midway through archiving a 500-file session, restarted, and the job completes once."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from pydicom import dcmread

from prearchive.models import PrearchiveSession
from tests.archive.conftest import PHI, PROJECT_SCRIPT, archived_files, read_all, send_study
from tests.conftest import start_worker, wait_until
from xnatlite.models import AuditEvent, ImageSession

pytestmark = pytest.mark.django_db(transaction=True)
S = PrearchiveSession.Status


@pytest.fixture
def setup(project, member, site):
    project.anon_script, project.anon_script_enabled = PROJECT_SCRIPT, True
    project.save()
    client = Client()
    client.force_login(member)
    return client


def built_by_worker(client, study_uid: str) -> PrearchiveSession:
    """Queue the build as the reviewer's Rebuild does; the worker makes the session READY."""
    session = PrearchiveSession.objects.get(tag=study_uid)
    response = client.post(f"/prearchive/{session.pk}/action", {"action": "rebuild"})
    assert response.status_code == 302
    wait_until(lambda: PrearchiveSession.objects.get(pk=session.pk).status == S.READY, what="READY")
    return PrearchiveSession.objects.get(pk=session.pk)


def assert_clean(project: str, label: str, subject: str, count: int) -> None:
    datasets = read_all(project, label)
    assert len(datasets) == count
    for ds in datasets:
        assert (ds.StudyDescription, str(ds.PatientName), ds.PatientID) == (project, subject, label)
        for keyword, value in PHI.items():
            assert str(ds.get(keyword, "")) != value, keyword
        assert "PatientBirthDate" not in ds and "PatientAddress" not in ds and "InstitutionName" not in ds


def test_archive_through_the_page_with_a_worker(setup, celery_worker):
    client = setup
    study = send_study(project="PROJ1", subject="RAW_SUBJ", label="RAW_SESS", series=((1, "MR", 4), (2, "MR", 3)))
    session = built_by_worker(client, study)
    page = client.get(f"/prearchive/{session.pk}/")
    assert page.status_code == 200 and b"Review and Archive" in page.content
    response = client.post(f"/prearchive/{session.pk}/archive",
                           {"project": "PROJ1", "subject": "SUBJ_01", "label": "SUBJ_01_MR1", "overwrite": "none"})
    assert response.status_code == 302
    status = wait_until(lambda: client.get(f"/prearchive/{session.pk}/status.json").json()["status"] == "ARCHIVED",
                        what="archived")
    assert status
    assert client.get(f"/prearchive/{session.pk}/status.json").json()["url"] == "/archive/PROJ1/sessions/SUBJ_01_MR1/"
    assert_clean("PROJ1", "SUBJ_01_MR1", "SUBJ_01", 7)
    assert client.get("/archive/PROJ1/sessions/SUBJ_01_MR1/").status_code == 200
    assert not (Path(settings.PREARCHIVE_ROOT) / session.relative_dir).exists()


def test_archive_through_services_archive_with_a_worker(setup, celery_worker):
    client = setup
    study = send_study(project="PROJ1", subject="X", label="Y", series=((3, "MR", 5),))
    session = built_by_worker(client, study)
    response = client.post("/data/services/archive", {
        "src": session.uri, "overwrite": "none", "subject_ID": "SUBJ_02", "label": "SUBJ_02_MR1", "async": "true"})
    assert response.status_code == 200, response.content
    assert response.content.decode().strip() == "/data/archive/projects/PROJ1/subjects/SUBJ_02/experiments/SUBJ_02_MR1"
    wait_until(lambda: ImageSession.objects.filter(label="SUBJ_02_MR1").exists()
               and not PrearchiveSession.objects.filter(pk=session.pk).exists(), what="archived")
    assert_clean("PROJ1", "SUBJ_02_MR1", "SUBJ_02", 5)


def test_sigkill_midway_through_a_500_file_archive_completes_exactly_once(setup, service_env, tmp_path):
    from prearchive.services.archive import session_archive_request
    from tests.archive.conftest import build
    from tests.conftest import redis_flush

    study = send_study(project="PROJ1", subject="BIG", label="BIG_MR1", series=((1, "MR", 250), (2, "MR", 250)),
                       rows=128)
    session = PrearchiveSession.objects.get(tag=study)
    build(session.pk)
    session.refresh_from_db()
    assert session.status == S.READY and session.file_count == 500
    sops = {dcmread(p, stop_before_pixels=True).SOPInstanceUID
            for p in (Path(settings.PREARCHIVE_ROOT) / session.relative_dir).rglob("*") if p.is_file()
            and not p.name.startswith(".")}
    assert len(sops) == 500

    redis_flush()
    worker = start_worker(service_env, tmp_path / "worker1.log", name="victim")
    try:
        session_archive_request(session=session, actor="mike")
        partial = Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001" / f".BIG_MR1.partial-{session.pk}" / "SCANS"

        def written() -> int:
            return sum(1 for p in partial.rglob("*.dcm")) if partial.exists() else 0

        wait_until(lambda: written() >= 120, timeout=60, every=0.01, what="the job to be midway")
        worker.kill()  # SIGKILL to the worker's process group
    finally:
        worker.stop()
    midway = written()
    assert 0 < midway < 500, midway
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.ARCHIVING
    assert not ImageSession.objects.exists()

    worker2 = start_worker(service_env, tmp_path / "worker2.log", name="rescuer")
    try:
        wait_until(lambda: not PrearchiveSession.objects.filter(pk=session.pk).exists(), timeout=120,
                   what="the retried job to finish")
    finally:
        worker2.stop()
    files = archived_files("PROJ1", "BIG_MR1")
    assert len(files) == 500
    archived_sops = [dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in files]
    assert sorted(archived_sops) == sorted(sops)  # nothing lost, nothing duplicated
    record = ImageSession.objects.get()
    assert sum(s.file_count for s in record.scans.all()) == 500
    assert record.document["prearchive_ops"] == [f"{session.pk}-{session.timestamp}"]
    assert AuditEvent.objects.filter(action="session_archive").count() == 1
    arc = Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001"
    assert sorted(p.name for p in arc.iterdir()) == ["BIG_MR1"]  # no partial or old folder left
    assert not (Path(settings.PREARCHIVE_ROOT) / session.relative_dir).exists()
    # The rescuer ran the job (queued again by its start-up recovery, or by the idle sweep's).
    assert "prearchive.session_archive" in (tmp_path / "worker2.log").read_text()
