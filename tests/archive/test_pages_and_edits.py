"""Reviewer pages (list filters, bulk actions, header, thumbnail, status), archive pages (read-only for
collaborators, audit trail that outlives a deleted session) and metadata edits re-running the project script."""
from __future__ import annotations

import pytest
from django.test import Client

from prearchive.models import PrearchiveSession
from tests.archive.conftest import archived_files, client_for, read_all, ready_session
from xnatlite.models import AuditEvent, ImageSession, Project, Subject

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status


def run_jobs():
    """The edits are worker jobs (issue 14 item 7): run what the pages queued, as the worker would."""
    from xnatlite.archive.jobs import archive_job_run
    from xnatlite.models import ArchiveJob

    for job_id in ArchiveJob.objects.filter(status="QUEUED").order_by("id").values_list("id", flat=True):
        assert archive_job_run(job_id=job_id) == "DONE", ArchiveJob.objects.get(pk=job_id).error


def archive_now(session, **kwargs):
    from prearchive.services.archive import session_archive, session_archive_request

    session_archive_request(session=session, actor="mike", **kwargs)
    assert session_archive(session_id=session.pk) == "archived"


def test_list_filters_sorts_and_hides_other_projects(project, member, site):
    # Labels that cannot turn up by chance in a token or a UID of the page.
    a, b, g = "LBL_ALPHA_1", "LBL_BETA_1", "LBL_GAMMA_1"
    Project.objects.create(id="OTHER", prearchive_code=0)
    ready_session(project="PROJ1", subject="ALPHA", label=a)
    ready_session(project="PROJ1", subject="BETA", label=b)
    ready_session(project="OTHER", subject="GAMMA", label=g)
    client = client_for(member)
    page = client.get("/prearchive/").content.decode()
    assert a in page and b in page and g not in page
    page = client.get("/prearchive/?q=BETA").content.decode()
    assert b in page and a not in page
    page = client.get("/prearchive/?sort=-label").content.decode()
    assert page.index(b) < page.index(a)
    page = client.get("/prearchive/?sort=label").content.decode()
    assert page.index(a) < page.index(b)
    assert a not in client.get("/prearchive/?status=ERROR").content.decode()


def test_unassigned_is_for_site_admins(admin_user, member, project, site):
    ready_session(project=None, label="NOWHERE")
    assert "NOWHERE" in client_for(admin_user).get("/prearchive/?project=Unassigned").content.decode()
    assert "NOWHERE" not in client_for(member).get("/prearchive/").content.decode()


def test_bulk_archive_and_delete(project, member, site):
    a, b = ready_session(project="PROJ1", label="A1"), ready_session(project="PROJ1", label="B1")
    client = client_for(member)
    client.post("/prearchive/bulk", {"action": "archive", "session": [a.pk]})
    client.post("/prearchive/bulk", {"action": "delete", "session": [b.pk]})
    assert PrearchiveSession.objects.get(pk=a.pk).status == S.QUEUED_ARCHIVING
    assert PrearchiveSession.objects.get(pk=b.pk).status == S.QUEUED_DELETING


def test_session_page_header_thumbnail_and_status(project, member, outsider, site):
    session = ready_session(project="PROJ1", series=((1, "MR", 3), (2, "OT", 1)), BurnedInAnnotation="YES")
    client = client_for(member)
    page = client.get(f"/prearchive/{session.pk}/").content.decode()
    assert "Burned In Annotation YES" in page and "modality OT" in page
    thumb = client.get(f"/prearchive/{session.pk}/scans/1/thumbnail.png")
    assert thumb.status_code == 200 and thumb.content[:8] == b"\x89PNG\r\n\x1a\n"
    file_id = session.files.filter(scan_id="1").first().pk
    header = client.get(f"/prearchive/{session.pk}/files/{file_id}/header").content.decode()
    assert "(0020,000E)" in header and "Series Instance UID" in header
    status = client.get(f"/prearchive/{session.pk}/status.json").json()
    assert status["status"] == "READY" and status["done"] is True
    assert client_for(outsider).get(f"/prearchive/{session.pk}/").status_code == 404
    assert Client().get("/prearchive/").url.startswith("/app/template/Login.vm")


def test_status_of_an_archived_session_points_to_its_archive_page(project, member, site):
    session = ready_session(project="PROJ1")
    archive_now(session, label="DONE")
    client = client_for(member)
    assert client.get(f"/prearchive/{session.pk}/status.json").json()["url"] == "/archive/PROJ1/sessions/DONE/"
    assert client.get(f"/prearchive/{session.pk}/").url == "/archive/PROJ1/sessions/DONE/"


def test_archive_pages_are_read_only_for_collaborators(project, collaborator, outsider, site):
    archive_now(ready_session(project="PROJ1"), label="E1", subject="S1")
    client = client_for(collaborator)
    page = client.get("/archive/PROJ1/sessions/E1/").content.decode()
    assert "E1" in page and "session-edit" not in page
    assert client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S1",
                                                       "label": "HACK"}).status_code == 404
    assert client.get("/archive/PROJ1/").status_code == 200
    assert client.get("/archive/PROJ1/subjects/S1/").status_code == 200
    download = client.get("/archive/PROJ1/sessions/E1/download")
    assert download.status_code == 200 and download["Content-Type"] == "application/zip"
    assert client_for(outsider).get("/archive/PROJ1/").status_code == 404


def test_relabel_move_and_reassign_rerun_the_project_script(scripted_project, member, site):
    site.rerun_project_anon_on_rename = True  # XNAT's default is off (issue 14 item 9)
    site.save()
    Project.objects.create(id="PROJ2", prearchive_code=0, anon_script=scripted_project.anon_script,
                           anon_script_enabled=True)
    from xnatlite.models import ProjectMember

    ProjectMember.objects.create(project_id="PROJ2", user=member, role="member")
    archive_now(ready_session(project="PROJ1"), label="E1", subject="S1")
    client = client_for(member)
    response = client.post("/archive/PROJ1/sessions/E1/", {"project": "PROJ2", "subject": "S2", "label": "E2"})
    assert response.status_code == 302 and response.url == "/archive/PROJ1/sessions/E1/"  # queued
    run_jobs()
    assert not archived_files("PROJ1", "E1")
    for ds in read_all("PROJ2", "E2"):
        assert (ds.StudyDescription, str(ds.PatientName), ds.PatientID) == ("PROJ2", "S2", "E2")
    event = AuditEvent.objects.get(action="session_update")
    assert event.details["old_label"] == "E1" and event.details["reanonymized"] is True

    subject = Subject.objects.get(project_id="PROJ2", label="S2")
    assert client.post("/archive/PROJ2/subjects/S2/", {"label": "S3"}).status_code == 302
    run_jobs()
    for ds in read_all("PROJ2", "E2"):
        assert str(ds.PatientName) == "S3"
    assert Subject.objects.get(pk=subject.pk).label == "S3"


def test_relabel_without_rerun_keeps_the_headers(scripted_project, member, site):
    site.rerun_project_anon_on_rename = False
    site.save()
    archive_now(ready_session(project="PROJ1"), label="E1", subject="S1")
    client_for(member).post("/archive/PROJ1/sessions/E1/", {"project": "PROJ1", "subject": "S1", "label": "E9"})
    run_jobs()
    assert {ds.PatientID for ds in read_all("PROJ1", "E9")} == {"E1"}


def test_audit_trail_survives_deletion(project, owner, site):
    archive_now(ready_session(project="PROJ1"), label="E1", subject="S1")
    client = client_for(owner)
    assert client.post("/archive/PROJ1/sessions/E1/manage", {"action": "delete"}).status_code == 302
    assert not ImageSession.objects.exists() and not archived_files("PROJ1", "E1")
    trail = client.get("/archive/PROJ1/audit").content.decode()
    assert "session_archive" in trail and "session_delete" in trail and "E1" in trail
