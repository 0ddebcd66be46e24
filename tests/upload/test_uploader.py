"""The compressed uploader: the page, the job endpoints, and the job run (service called directly)."""
from __future__ import annotations


import pytest
from django.test import Client

from prearchive.models import PrearchiveSession
from tests.upload.helpers import leftovers, session_files, zip_of
from upload.models import UploadJob
from upload.services import upload_job_run
from xnatlite.selectors import site_config_get


@pytest.fixture
def two_sessions_zip(tmp_path):
    session_files(tmp_path / "z" / "a", series=1, per_series=3, PatientID="SUBA", PatientName="A^A")
    session_files(tmp_path / "z" / "b", series=2, per_series=2, PatientID="SUBB", PatientName="B^B")
    return zip_of(tmp_path / "z", tmp_path / "two.zip", extra={"readme.txt": b"hi"})


def browser(user):
    c = Client(enforce_csrf_checks=True)
    c.force_login(user)
    token = c.get("/upload/").cookies["csrftoken"].value
    return c, token


def test_page_lists_only_projects_the_user_may_upload_to(member, collaborator, db):
    from xnatlite.models import Project

    Project.objects.create(id="OTHER", name="Other")
    c, _ = browser(member)
    page = c.get("/upload/").content.decode()
    assert 'value="PROJ1"' in page and 'value="OTHER"' not in page
    c, _ = browser(collaborator)
    assert "You may not upload to any project" in c.get("/upload/").content.decode()
    assert Client().get("/upload/").status_code == 302  # sign in first


def test_hidden_uploader(member, settings):
    config = site_config_get()
    config.ui_hide_compressed_uploader_upload_option = True
    config.save()
    c, token = browser(member)
    assert "disabled on this site" in c.get("/upload/").content.decode()
    r = c.post("/upload/jobs?project=PROJ1&name=a.zip", b"PK", content_type="application/octet-stream",
               HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 403


def test_job_upload_then_run_then_summary(member, two_sessions_zip, settings, django_capture_on_commit_callbacks):
    from unittest import mock

    c, token = browser(member)
    with mock.patch("upload.tasks.upload_job_run.delay") as delay, \
            django_capture_on_commit_callbacks(execute=True):
        r = c.post("/upload/jobs?project=PROJ1&name=two.zip", two_sessions_zip.read_bytes(),
                   content_type="application/octet-stream", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 202, r.content
    job_id = r.json()["id"]
    delay.assert_called_once_with(job_id)
    assert c.get(f"/upload/jobs/{job_id}").json()["status"] == "QUEUED"
    assert upload_job_run(job_id=job_id) == UploadJob.Status.DONE
    assert upload_job_run(job_id=job_id) is None  # a redelivered message is a no-op
    state = c.get(f"/upload/jobs/{job_id}").json()
    assert state["status"] == "DONE" and state["files_done"] == state["files_total"] == 7
    summary = state["summary"]
    assert summary["stored"] == 7 and summary["skipped"] == [{"name": "readme.txt", "reason": "not a DICOM file"}]
    assert len(summary["sessions"]) == 2 and all(s["created"] for s in summary["sessions"])
    assert {s["status"] for s in summary["sessions"]} == {"READY"}  # built at once (dest=/prearchive)
    for s in summary["sessions"]:
        session = PrearchiveSession.objects.get(timestamp=s["uri"].split("/")[-2], folder_name=s["uri"].split("/")[-1])
        assert s["page"] == f"/prearchive/{session.pk}/"
        assert s["uri"] == session.uri
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []
    # Someone else cannot read the job.
    other = Client()
    other.force_login(type(member).objects.create_user("eve", "e@x.org", "eve-pass-1"))
    assert other.get(f"/upload/jobs/{job_id}").status_code == 404


def test_bad_archive_job_fails_with_a_reason_and_stores_nothing(member, tmp_path, settings):
    c, token = browser(member)
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    r = c.post("/upload/jobs?project=PROJ1&name=cut.zip", (tmp_path / "cut.zip").read_bytes(),
               content_type="application/octet-stream", HTTP_X_CSRFTOKEN=token)
    job_id = r.json()["id"]
    assert upload_job_run(job_id=job_id) == UploadJob.Status.FAILED
    state = c.get(f"/upload/jobs/{job_id}").json()
    assert "truncated or corrupt" in state["error"]
    assert PrearchiveSession.objects.count() == 0
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_job_refusals(member, collaborator, project, settings):
    project.allow_create_subject = False
    project.save()
    c, token = browser(member)
    post = lambda q, body=b"PK": c.post(f"/upload/jobs?{q}", body, content_type="application/octet-stream",
                                        HTTP_X_CSRFTOKEN=token)
    assert post("project=PROJ1&subject=NEWSUBJ&name=a.zip").status_code == 403
    assert post("project=NOPE&name=a.zip").status_code == 404
    assert post("project=PROJ1&name=a.zip", b"").json()["error"].startswith("The request body is empty")
    c2, token2 = browser(collaborator)
    r = c2.post("/upload/jobs?project=PROJ1&name=a.zip", b"PK", content_type="application/octet-stream",
                HTTP_X_CSRFTOKEN=token2)
    assert r.status_code == 403
    assert UploadJob.objects.count() == 0
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_an_archive_without_dicom_fails_with_xnats_message(member, tmp_path, settings):
    """Issue 14 item 10: the uploader says what XNAT says, not "0 session(s)"."""
    import zipfile

    c, token = browser(member)
    with zipfile.ZipFile(tmp_path / "docs.zip", "w") as zf:
        zf.writestr("notes.txt", "not DICOM")
    r = c.post("/upload/jobs?project=PROJ1&name=docs.zip", (tmp_path / "docs.zip").read_bytes(),
               content_type="application/octet-stream", HTTP_X_CSRFTOKEN=token)
    job_id = r.json()["id"]
    assert upload_job_run(job_id=job_id) == UploadJob.Status.FAILED
    state = c.get(f"/upload/jobs/{job_id}").json()
    assert state["error"] == "Upload did not include parseable files for session generation."
    assert PrearchiveSession.objects.count() == 0
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []
