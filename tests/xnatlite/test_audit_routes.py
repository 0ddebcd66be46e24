"""The audit trail covers the routes that used to leave nothing: the compressed uploader's jobs, C-STORE
receipt (one event per new session, not per file), rebuild, and failed archives; each in words on /audit/
and without PHI."""
from __future__ import annotations

from html import unescape
from unittest import mock

import pytest
from django.test import Client

from prearchive.models import PrearchiveSession
from prearchive.services.archive import session_archive, session_archive_request
from prearchive.services.rebuild import session_rebuild_request
from tests.archive.conftest import client_for, ready_session
from tests.conftest import wait_until
from tests.dicom_factory import make_dataset
from tests.upload.helpers import session_files, zip_of
from tests.upload.test_dicom_scp import associate, free_port, scp  # noqa: F401 - the receiver fixture
from upload.dicom_scp import ReceiverConfig
from upload.services import upload_job_run
from xnatlite.models import AuditEvent


def page_for(user, query: str = "") -> str:
    return unescape(client_for(user).get(f"/audit/{query}").content.decode())


@pytest.mark.django_db
def test_a_compressed_upload_job_is_audited_without_the_file_name(member, admin_user, site, tmp_path):
    session_files(tmp_path / "z" / "a", series=1, per_series=3, PatientID="SUBA", PatientName="Doe^Jane")
    archive = zip_of(tmp_path / "z", tmp_path / "Doe_Jane.zip")
    c = Client(enforce_csrf_checks=True)
    c.force_login(member)
    token = c.get("/upload/").cookies["csrftoken"].value
    with mock.patch("upload.tasks.upload_job_run.delay"):
        r = c.post("/upload/jobs?project=PROJ1&name=Doe_Jane.zip", archive.read_bytes(),
                   content_type="application/octet-stream", HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 202, r.content
    assert upload_job_run(job_id=r.json()["id"]) == "DONE"
    event = AuditEvent.objects.get(action="upload_job_done")
    assert (event.actor, event.project_id, event.details["stored"]) == ("mike", "PROJ1", 3)
    assert "Doe" not in str(event.details) and "Jane" not in str(event.details)  # no file or patient name
    assert not AuditEvent.objects.filter(action="prearchive_receive").exists()  # not the C-STORE route
    assert "uploaded a compressed file into PROJ1 (3 files stored)" in page_for(admin_user)


@pytest.mark.django_db
def test_a_failed_compressed_upload_job_is_audited_with_its_reason(member, admin_user, site, tmp_path):
    (tmp_path / "cut.zip").write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    c = Client(enforce_csrf_checks=True)
    c.force_login(member)
    token = c.get("/upload/").cookies["csrftoken"].value
    with mock.patch("upload.tasks.upload_job_run.delay"):
        r = c.post("/upload/jobs?project=PROJ1&name=cut.zip", (tmp_path / "cut.zip").read_bytes(),
                   content_type="application/octet-stream", HTTP_X_CSRFTOKEN=token)
    assert upload_job_run(job_id=r.json()["id"]) == "FAILED"
    event = AuditEvent.objects.get(action="upload_job_failed")
    assert event.details["reason"] and event.details["stored"] == 0
    assert f"uploaded a compressed file into PROJ1, which failed: {event.details['reason']}" in page_for(admin_user)


def test_c_store_receipt_is_one_event_per_new_session(scp, admin_user, site):  # noqa: F811
    port = free_port()
    scp(ReceiverConfig.default(ae_title="XNATLITE", port=port))
    assoc = associate(port)
    assert assoc.is_established
    first = [make_dataset(StudyInstanceUID="1.2.3.4.77", PatientComments="Project: none",
                          PatientName="Doe^John", PatientID="RCV_A", PatientBirthDate="19610203")
             for _ in range(4)]
    second = [make_dataset(StudyInstanceUID="1.2.3.4.78", PatientComments="Project: none",
                           PatientName="Doe^John", PatientID="RCV_B", PatientBirthDate="19610203")
              for _ in range(2)]
    assert [assoc.send_c_store(ds).Status for ds in first + second] == [0] * 6
    assoc.release()
    sessions = {s.name for s in PrearchiveSession.objects.filter(tag__in=("1.2.3.4.77", "1.2.3.4.78"))}
    assert len(sessions) == 2
    wait_until(lambda: AuditEvent.objects.filter(action="prearchive_receive").count() >= 2, timeout=10,
               what="the receipt events")
    events = list(AuditEvent.objects.filter(action="prearchive_receive"))
    assert len(events) == 2 and {e.session_label for e in events} == sessions  # one per session, not per file
    for event in events:
        assert event.details["calling_aet"] == "SCANNER"
        assert "Doe" not in str(event.details) and "19610203" not in str(event.details)
        assert "1.2.3.4.7" not in str(event.details)  # no original UIDs
    page = page_for(admin_user)
    for name in sessions:
        assert f"received session {name} over DICOM (from SCANNER)" in page


@pytest.mark.django_db
def test_a_rebuild_is_audited(project, owner, site):
    session = ready_session(project="PROJ1", label="RB_MR")
    session_rebuild_request(session=session, actor="olivia")
    event = AuditEvent.objects.get(action="prearchive_rebuild")
    assert (event.actor, event.project_id, event.session_label) == ("olivia", "PROJ1", "RB_MR")
    assert "olivia" in page_for(owner) and "rebuilt session RB_MR in the prearchive" in page_for(owner)


@pytest.mark.django_db
def test_a_failed_archive_is_audited_with_the_reason(project, owner, site):
    project.anon_script, project.anon_script_enabled = 'version "6.1"\n(0010,0010) := \n', True
    project.save()
    session = ready_session(project="PROJ1", label="FAIL_MR")
    session_archive_request(session=session, actor="olivia")
    assert session_archive(session_id=session.pk) == "error"
    session.refresh_from_db()
    event = AuditEvent.objects.get(action="session_archive_failed")
    assert (event.actor, event.project_id, event.session_label) == ("olivia", "PROJ1", "FAIL_MR")
    assert event.details["reason"] == session.error_message and "does not compile" in session.error_message
    assert not AuditEvent.objects.filter(action="session_archive").exists()
    assert f"could not archive session FAIL_MR: {session.error_message}" in page_for(owner)


@pytest.mark.django_db
def test_a_rest_import_is_one_receipt_event_after_commit_without_file_names(
        client, member, admin_user, site, tmp_path, django_capture_on_commit_callbacks):
    from tests.upload.helpers import MEMBER, basic

    session_files(tmp_path / "r" / "a", series=2, per_series=2, PatientID="RESTA", PatientName="Doe^Jane")
    archive = zip_of(tmp_path / "r", tmp_path / "Doe_Jane.zip")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        r = client.post("/data/services/import?PROJECT_ID=PROJ1&SUBJECT_ID=R1&EXPT_LABEL=R1_MR",
                        archive.read_bytes(), content_type="application/zip", **basic(*MEMBER))
        assert r.status_code == 200, r.content
        assert not AuditEvent.objects.filter(action="import_receive").exists()  # only once the work commits
    assert callbacks
    event = AuditEvent.objects.get(action="import_receive")  # one for the request, not one per file
    assert (event.actor, event.project_id, event.details["route"]) == ("mike", "PROJ1", "REST")
    assert (event.details["stored"], event.details["filtered"], event.details["rejected"]) == (4, 0, 0)
    assert event.details["sessions"] == ["R1_MR"]
    assert event.details["prearchive"] == [PrearchiveSession.objects.get(name="R1_MR").pk]
    assert "Doe" not in str(event.details) and "RESTA" not in str(event.details)
    assert "imported files into PROJ1 through the REST import (4 stored, 0 filtered, 0 refused)" in page_for(
        admin_user)


@pytest.mark.django_db
def test_an_inbox_import_and_a_refused_rest_import_are_recorded(client, member, site, tmp_path,
                                                                 django_capture_on_commit_callbacks):
    from tests.upload.helpers import MEMBER, basic
    from xnatlite.selectors import site_config_get

    config = site_config_get()
    config.inbox_path = str(tmp_path / "inbox")
    config.save()
    session_files(tmp_path / "inbox" / "Doe_Jane", series=1, per_series=3, PatientID="INB")
    with django_capture_on_commit_callbacks(execute=True):
        r = client.post("/data/services/import?import-handler=inbox&path=Doe_Jane&PROJECT_ID=PROJ1"
                        "&SUBJECT_ID=I1&EXPT_LABEL=I1_MR", **basic(*MEMBER))
        assert r.status_code == 200, r.content
        (tmp_path / "text.zip").write_bytes(b"")
        import zipfile

        with zipfile.ZipFile(tmp_path / "text.zip", "w") as zf:
            zf.writestr("notes.txt", "not DICOM")
        r = client.post("/data/services/import?PROJECT_ID=PROJ1", (tmp_path / "text.zip").read_bytes(),
                        content_type="application/zip", **basic(*MEMBER))
        assert r.status_code == 400
    inbox, refused = AuditEvent.objects.filter(action="import_receive").order_by("id")
    assert (inbox.details["route"], inbox.details["stored"], inbox.details["sessions"]) == ("inbox", 3, ["I1_MR"])
    assert "Doe_Jane" not in str(inbox.details)  # the folder's name is not recorded
    assert refused.details["route"] == "REST" and refused.details["stored"] == 0 and refused.details["reason"]
