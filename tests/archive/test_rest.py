"""XNAT REST of the review/archive path: prearchive actions, /data/services/*, archived experiments,
project codes and anonymization scripts; permissions and quarantine."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.test import Client

from prearchive.models import PrearchiveSession
from tests.archive.conftest import PROJECT_SCRIPT, client_for, ready_session
from xnatlite.models import AuditEvent, ImageSession, Project

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status


def archived(project_id="PROJ1", label="E1", subject="S1"):
    from prearchive.services.archive import session_archive, session_archive_request

    session = ready_session(project=project_id, label=f"pre_{label}")
    session_archive_request(session=session, actor="t", subject=subject, label=label)
    assert session_archive(session_id=session.pk) == "archived"
    return ImageSession.objects.get(project_id=project_id, label=label)


def test_services_archive_is_synchronous_and_answers_the_archive_uri(project, member, site):
    session = ready_session(project="PROJ1")
    response = client_for(member).post("/data/services/archive", {
        "src": session.uri.replace("/data", "", 1), "dest": "/archive/projects/PROJ1/subjects/SUBJ/experiments/EXP"})
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/uri-list")
    assert response.content == b"/data/archive/projects/PROJ1/subjects/SUBJ/experiments/EXP\r\n"
    assert ImageSession.objects.get(label="EXP").subject.label == "SUBJ"


def test_services_archive_conflict_is_409_with_the_reasons(project, member, site):
    archived(label="EXP")
    session = ready_session(project="PROJ1", label="EXP")
    response = client_for(member).post("/data/services/archive", {"src": session.uri, "subject_ID": "S1"})
    assert response.status_code == 409
    assert b"CONFLICT-1: Session already exists, retry with overwrite enabled" in response.content
    response = client_for(member).post("/data/services/archive",
                                       {"src": session.uri, "overwrite": "append", "subject_ID": "S1"})
    assert response.status_code == 409 and b"CONFLICT-5" in response.content  # another study: append refused
    response = client_for(member).post("/data/services/archive",
                                       {"src": session.uri, "overwrite": "delete", "subject_ID": "S1"})
    assert response.status_code == 200


def test_outsiders_and_collaborators_cannot_archive_or_delete(project, collaborator, outsider, site):
    session = ready_session(project="PROJ1")
    for user in (collaborator, outsider):
        client = client_for(user)
        # 404, not 403: to those who may not see it, the session answers as one that does not exist
        assert client.post("/data/services/archive", {"src": session.uri}).status_code == 404
        assert client.delete(session.uri).status_code == 404
    assert Client().post("/data/services/archive", {"src": session.uri}).status_code == 401
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.READY


def test_delete_on_the_session_path_and_services_delete(project, member, site):
    a, b = ready_session(project="PROJ1", label="A"), ready_session(project="PROJ1", label="B")
    client = client_for(member)
    assert client.delete(a.uri).status_code == 200
    assert PrearchiveSession.objects.get(pk=a.pk).status == S.QUEUED_DELETING
    from prearchive.services.delete import session_delete

    assert session_delete(session_id=a.pk) == "deleted"
    response = client.post("/data/services/prearchive/delete", {"src": b.uri, "async": "false"})
    assert response.status_code == 200
    assert not PrearchiveSession.objects.filter(pk__in=[a.pk, b.pk]).exists()
    assert AuditEvent.objects.filter(action="prearchive_delete").count() == 2


def test_action_move_and_rebuild(project, member, site):
    Project.objects.create(id="PROJ2", prearchive_code=0)
    from xnatlite.models import ProjectMember

    ProjectMember.objects.create(project_id="PROJ2", user=member, role="member")
    session = ready_session(project="PROJ1")
    client = client_for(member)
    response = client.post(session.uri + "?action=move&newProject=PROJ2")
    assert response.status_code == 200
    assert response.content.decode().strip() == f"/data/prearchive/projects/PROJ2/{session.timestamp}/{session.folder_name}"
    from prearchive.services.move import session_move

    assert session_move(session_id=session.pk) == "moved"
    session.refresh_from_db()
    assert session.project_id == "PROJ2" and session.status == S.QUEUED_BUILDING
    assert client.post(session.uri + "?action=build").status_code == 409  # already queued
    PrearchiveSession.objects.filter(pk=session.pk).update(status=S.READY)
    assert client.post(session.uri + "?action=build").status_code == 200
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.QUEUED_BUILDING


def test_set_status_is_for_site_admins(project, member, admin_user, site):
    session = ready_session(project="PROJ1")
    assert client_for(member).post(session.uri + "?action=set-status&status=ERROR").status_code == 403
    assert client_for(admin_user).post(session.uri + "?action=set-status&status=ERROR").status_code == 200
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.ERROR
    assert client_for(member).post(session.uri + "?action=reset-status").status_code == 200
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.READY


def test_experiment_json_and_zip(project, collaborator, site):
    record = archived()
    client = client_for(collaborator)
    body = client.get("/data/archive/projects/PROJ1/subjects/S1/experiments/E1").json()
    item = body["items"][0]
    assert item["data_fields"]["label"] == "E1" and item["data_fields"]["ID"] == record.accession_id
    assert item["meta"]["xsi:type"] == "xnat:mrSessionData"
    assert item["children"][0]["items"][0]["data_fields"]["ID"] == "1"
    assert client.get("/data/projects/PROJ1/subjects/S1/experiments/E1").status_code == 200
    response = client.get("/data/archive/projects/PROJ1/subjects/S1/experiments/E1/files?format=zip")
    assert response.status_code == 200
    names = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content))).namelist()
    assert len(names) == 3 and all(n.startswith("E1/SCANS/1/DICOM/") for n in names)


def test_quarantined_sessions_are_for_owners_only(project, owner, member, site):
    Project.objects.filter(pk="PROJ1").update(quarantine_code=1)
    record = archived()
    assert record.quarantined
    url = "/data/archive/projects/PROJ1/subjects/S1/experiments/E1"
    assert client_for(member).get(url).status_code == 404
    assert client_for(member).get("/archive/PROJ1/sessions/E1/").status_code == 404
    assert client_for(owner).get(url).status_code == 200
    response = client_for(owner).post("/archive/PROJ1/sessions/E1/manage", {"action": "release"})
    assert response.status_code == 302
    assert client_for(member).get(url).status_code == 200


def test_prearchive_and_quarantine_codes(project, owner, member, site):
    client = client_for(owner)
    assert client.get("/data/projects/PROJ1/prearchive_code").content == b"0"
    assert client.put("/data/projects/PROJ1/prearchive_code/5").status_code == 200
    assert Project.objects.get(pk="PROJ1").prearchive_code == 5
    assert client.put("/data/projects/PROJ1/prearchive_code/abc").status_code == 400
    assert client.put("/data/projects/PROJ1/quarantine_code/true").status_code == 200
    assert client.get("/data/projects/PROJ1/quarantine_code").content == b"1"
    assert client_for(member).put("/data/projects/PROJ1/quarantine_code/0").status_code == 403
    site.project_allow_auto_archive = False
    site.save()
    assert client.put("/data/projects/PROJ1/prearchive_code/4").status_code == 403


def test_project_anon_script_paths(project, owner, member, site):
    client = client_for(owner)
    base = "/data/projects/PROJ1/config/anon/projects/PROJ1"
    assert client.get(base + "?contents=true").status_code == 404  # disabled / empty
    response = client.put(base + "?inbody=true&status=enabled", data=PROJECT_SCRIPT, content_type="text/plain")
    assert response.status_code == 200, response.content
    assert client.get(base + "?contents=true").content.decode() == PROJECT_SCRIPT
    row = client.get(base).json()["ResultSet"]["Result"][0]
    assert (row["tool"], row["path"], row["status"]) == ("anon", "/projects/PROJ1", "enabled")
    bad = client.put(base + "?inbody=true", data='version "6.1"\n(0010,0010) := \n', content_type="text/plain")
    assert bad.status_code == 400 and bad.content.decode().startswith("2:")
    assert client.get("/xapi/anonymize/projects/PROJ1").content.decode() == PROJECT_SCRIPT
    assert client.put("/xapi/anonymize/projects/PROJ1/enabled", data="false", content_type="text/plain").status_code == 200
    assert client.get("/xapi/anonymize/projects/PROJ1/enabled").json() is False
    assert client.put(base).status_code == 400  # neither status nor body
    assert client_for(member).put(base + "?status=enabled").status_code == 403


def test_site_anon_script_paths(admin_user, member, site):
    client = client_for(admin_user)
    assert "Default XNAT anonymization script" in client.get("/xapi/anonymize/default").content.decode()
    assert client.put("/xapi/anonymize/site", data='version "6.1"\n-(0010,0030)\n',
                      content_type="text/plain").status_code == 200
    assert client.get("/data/config/anon/script?contents=true").status_code == 404  # disabled by the fixture
    assert client.put("/data/config/anon/script?status=enabled").status_code == 200
    assert client.get("/data/config/anon/script?contents=true").content.decode().strip() == 'version "6.1"\n-(0010,0030)'
    assert client.get("/xapi/anonymize/site/enabled").json() is True
    bad = client.put("/xapi/anonymize/site", data="(0010,0010 := x", content_type="text/plain")
    assert bad.status_code == 400 and bad.content.decode()[:3].rstrip(":").split(":")[0].isdigit()
    assert client_for(member).put("/xapi/anonymize/site", data="", content_type="text/plain").status_code == 403


def test_get_on_the_session_path_is_the_intake_view(project, member, site):
    session = ready_session(project="PROJ1")
    response = client_for(member).get(session.uri + "?format=json")
    assert response.status_code == 200
    assert response.json()["ResultSet"]["Result"][0]["name"] == session.name


def test_services_archive_to_an_unknown_project_is_404(project, admin_user, site):
    session = ready_session(project="PROJ1")
    response = client_for(admin_user).post("/data/services/archive", {"src": session.uri, "project": "NOPE"})
    assert response.status_code == 404
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.READY
