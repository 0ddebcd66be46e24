"""Issue 14 item 7: relabel, move and subject relabel of archived sessions are locked worker jobs that write
the new copy first and switch by rename; a script error is a clear error (never a 500); a subject relabel
changes the database only after the files; progress and errors on the page and in REST."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from tests.archive.conftest import PROJECT_SCRIPT, archived_files, client_for, read_all, ready_session
from tests.conftest import wait_until
from xnatlite.archive.jobs import archive_job_run
from xnatlite.models import ArchiveJob, AuditEvent, ImageSession, Subject

FAILING = 'version "6.1"\n(0008,1030) := getURL["http://127.0.0.1:9/never"]\n'  # getURL is off: fails per file


def archived(label="E1", subject="S1"):
    from prearchive.services.archive import session_archive, session_archive_request

    session = ready_session(project="PROJ1", label=f"pre_{label}")
    session_archive_request(session=session, actor="mike", subject=subject, label=label)
    assert session_archive(session_id=session.pk) == "archived"
    return ImageSession.objects.get(project_id="PROJ1", label=label)


def leftovers() -> list[Path]:
    base = Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001"
    return sorted(p for p in base.iterdir() if p.name.startswith("."))


def rerun_with(project, site, script: str) -> None:
    site.rerun_project_anon_on_rename = True
    site.save()
    project.anon_script, project.anon_script_enabled = script, True
    project.save()


@pytest.mark.django_db
def test_the_page_queues_the_edit_and_shows_its_progress_then_the_result(project, member, site):
    rerun_with(project, site, PROJECT_SCRIPT)
    archived()
    client = client_for(member)
    response = client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S1", "label": "E2"})
    assert response.status_code == 302
    job = ArchiveJob.objects.get()
    assert job.status == "QUEUED" and archived_files("PROJ1", "E1")  # nothing moved in the web request
    page = client.get("/archive/PROJ1/sessions/E1/").content.decode()
    assert 'id="archive-job"' in page and "QUEUED" in page
    assert archive_job_run(job_id=job.pk) == "DONE"
    state = client.get(f"/data/services/archive/jobs/{job.pk}").json()
    assert (state["status"], state["done"], state["total"]) == ("DONE", 3, 3)
    assert state["result"] == "/data/archive/projects/PROJ1/subjects/S1/experiments/E2"
    assert state["page"] == "/archive/PROJ1/sessions/E2/"
    assert not archived_files("PROJ1", "E1") and {ds.PatientID for ds in read_all("PROJ1", "E2")} == {"E2"}
    assert leftovers() == []
    page = client.get("/archive/PROJ1/sessions/E2/").content.decode()
    assert "DONE" in page and "3 of 3 files" in page


@pytest.mark.django_db
def test_a_script_error_is_a_clear_failed_job_and_nothing_changes(project, member, site):
    archived()
    rerun_with(project, site, FAILING)
    before = {p.name: p.read_bytes() for p in archived_files("PROJ1", "E1")}
    client = client_for(member)
    response = client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S9", "label": "E2"})
    assert response.status_code == 302
    job = ArchiveJob.objects.get()
    assert archive_job_run(job_id=job.pk) == "FAILED"
    job.refresh_from_db()
    assert job.error.startswith("The project's anonymization script failed on a file (")
    assert "getURL" in job.error and "nothing was changed" in job.error
    record = ImageSession.objects.get(pk=job.session_id)
    assert (record.label, record.subject.label) == ("E1", "S1")
    assert not Subject.objects.filter(label="S9").exists()
    assert {p.name: p.read_bytes() for p in archived_files("PROJ1", "E1")} == before
    assert not archived_files("PROJ1", "E2") and leftovers() == []
    rest = client.get(f"/data/services/archive/jobs/{job.pk}")
    assert rest.status_code == 200 and rest.json()["status"] == "FAILED" and "getURL" in rest.json()["error"]
    page = client.get("/archive/PROJ1/sessions/E1/")
    assert page.status_code == 200 and "failed on a file" in page.content.decode()


@pytest.mark.django_db
def test_a_subject_relabel_changes_the_database_only_after_the_files(project, member, site, monkeypatch):
    from xnatlite.archive import services

    rerun_with(project, site, PROJECT_SCRIPT)
    archived(label="E1", subject="S1")
    archived(label="E2", subject="S1")
    subject = Subject.objects.get(label="S1")
    seen = []
    real = services._rewrite

    def rewrite_and_look(**kwargs):
        seen.append(Subject.objects.get(pk=subject.pk).label)
        real(**kwargs)
        seen.append(Subject.objects.get(pk=subject.pk).label)

    monkeypatch.setattr(services, "_rewrite", rewrite_and_look)
    client = client_for(member)
    assert client.post("/archive/PROJ1/subjects/S1/", {"label": "S7"}).status_code == 302
    job = ArchiveJob.objects.get()
    assert archive_job_run(job_id=job.pk) == "DONE"
    assert seen == ["S1"] * 4  # every session's files were written while the database still said S1
    assert Subject.objects.get(pk=subject.pk).label == "S7"
    for label in ("E1", "E2"):
        assert {str(ds.PatientName) for ds in read_all("PROJ1", label)} == {"S7"}
    assert AuditEvent.objects.get(action="subject_relabel").details["reanonymized"] is True
    assert leftovers() == []


@pytest.mark.django_db
def test_a_failing_subject_relabel_changes_neither_files_nor_database(project, member, site):
    archived(label="E1", subject="S1")
    rerun_with(project, site, FAILING)
    before = {p.name: p.read_bytes() for p in archived_files("PROJ1", "E1")}
    client = client_for(member)
    client.post("/archive/PROJ1/subjects/S1/", {"label": "S7"})
    job = ArchiveJob.objects.get()
    assert archive_job_run(job_id=job.pk) == "FAILED"
    assert Subject.objects.filter(label="S1").exists() and not Subject.objects.filter(label="S7").exists()
    assert {p.name: p.read_bytes() for p in archived_files("PROJ1", "E1")} == before and leftovers() == []
    assert "failed on a file" in client.get("/archive/PROJ1/subjects/S1/").content.decode()


@pytest.mark.django_db
def test_a_second_edit_while_one_is_queued_is_refused_and_bad_labels_at_once(project, member, site):
    archived()
    client = client_for(member)
    client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S1", "label": "E2"})
    page = client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S1", "label": "E3"},
                       follow=True).content.decode()
    assert "Another edit of this session is queued or running" in page
    assert ArchiveJob.objects.count() == 1
    archived(label="OTHER")
    page = client.post("/archive/PROJ1/sessions/OTHER/", {"project": "PROJ1", "subject": "S1", "label": "E1"},
                       follow=True).content.decode()
    assert "already has a session labelled E1" in page and ArchiveJob.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_real_worker_runs_the_relabel(project, member, site, celery_worker):
    rerun_with(project, site, PROJECT_SCRIPT)
    archived()
    client = client_for(member)
    client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S2", "label": "E5"})
    job = ArchiveJob.objects.get()
    wait_until(lambda: client.get(f"/data/services/archive/jobs/{job.pk}").json()["status"] in ("DONE", "FAILED"),
               timeout=90, what="the worker's relabel", procs=[celery_worker])
    assert client.get(f"/data/services/archive/jobs/{job.pk}").json()["status"] == "DONE"
    assert {(ds.PatientID, str(ds.PatientName)) for ds in read_all("PROJ1", "E5")} == {("E5", "S2")}
    assert not archived_files("PROJ1", "E1")


@pytest.mark.django_db
def test_a_running_job_whose_worker_died_is_queued_again(project, member, site, django_capture_on_commit_callbacks):
    from xnatlite.archive.jobs import archive_jobs_recover

    archived()
    client_for(member).post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S1", "label": "E2"})
    job = ArchiveJob.objects.get()
    ArchiveJob.objects.filter(pk=job.pk).update(status="RUNNING")  # its worker was killed: the lock is free
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert archive_jobs_recover() == 1
    assert len(callbacks) == 1 and ArchiveJob.objects.get(pk=job.pk).status == "QUEUED"
    assert archive_job_run(job_id=job.pk) == "DONE" and archived_files("PROJ1", "E2")
