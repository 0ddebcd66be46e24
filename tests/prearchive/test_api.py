"""/data/prearchive REST: listings and documents, with XNAT's shapes and permissions."""
from __future__ import annotations

import base64

import pytest

from prearchive.models import PrearchiveSession
from prearchive.services.builder import session_build

from .conftest import send_study

pytestmark = pytest.mark.django_db


def auth(user, password):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def sessions(site, project):
    send_study(PatientComments="Project:PROJ1 Subject:S1 Session:E1")
    send_study(StudyDescription="nobody")  # Unassigned
    s = PrearchiveSession.objects.get(project_id="PROJ1")
    PrearchiveSession.objects.filter(pk=s.pk).update(status="QUEUED_BUILDING")
    session_build(session_id=s.pk)
    s.refresh_from_db()
    return s


def test_the_listing_has_xnats_columns(client, sessions, member):
    rows = client.get("/data/prearchive", **auth("mike", "mike-pass-1")).json()["ResultSet"]["Result"]
    assert len(rows) == 1  # members do not see Unassigned
    row = rows[0]
    for column in ("project", "timestamp", "lastmod", "uploaded", "scan_date", "scan_time", "subject",
                   "folderName", "name", "tag", "status", "url", "autoarchive", "prevent_anon",
                   "prevent_auto_commit", "SOURCE", "VISIT", "PROTOCOL", "TIMEZONE"):
        assert column in row
    assert row["url"] == sessions.uri.removeprefix("/data")  # XNAT: url column is /prearchive/...
    assert row["url"].startswith("/prearchive/projects/") and row["status"] == "READY" and row["name"] == "E1"


def test_admins_see_unassigned_and_filter_by_tag(client, sessions, admin_user):
    rows = client.get("/data/prearchive", **auth("admin", "admin-pass-1")).json()["ResultSet"]["Result"]
    assert {r["project"] for r in rows} == {"PROJ1", "Unassigned"}
    rows = client.get(f"/data/prearchive?tag={sessions.tag}", **auth("admin", "admin-pass-1")).json()
    assert [r["tag"] for r in rows["ResultSet"]["Result"]] == [sessions.tag]


def test_tag_search_is_for_admins_only(client, sessions, member):
    assert client.get(f"/data/prearchive?tag={sessions.tag}", **auth("mike", "mike-pass-1")).status_code == 403


def test_outsiders_and_anonymous_see_nothing(client, sessions, outsider):
    assert client.get("/data/prearchive").status_code == 401
    rows = client.get("/data/prearchive", **auth("oscar", "oscar-pass-1")).json()["ResultSet"]["Result"]
    assert rows == []
    assert client.get(sessions.uri + "?format=json", **auth("oscar", "oscar-pass-1")).status_code == 404


def test_project_listing(client, sessions, admin_user):
    rows = client.get("/data/prearchive/projects/Unassigned", **auth("admin", "admin-pass-1")).json()
    assert [r["project"] for r in rows["ResultSet"]["Result"]] == ["Unassigned"]
    rows = client.get("/data/prearchive/projects/PROJ1,Unassigned", **auth("admin", "admin-pass-1")).json()
    assert len(rows["ResultSet"]["Result"]) == 2


def test_the_session_document_as_xml_and_json(client, sessions, member):
    response = client.get(sessions.uri + "?format=xml", **auth("mike", "mike-pass-1"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/xml")
    assert b"mrSessionData" in response.content and sessions.tag.encode() in response.content
    body = client.get(sessions.uri + "?format=json&document=true", **auth("mike", "mike-pass-1")).json()
    (row,) = body["ResultSet"]["Result"]
    assert row["document"]["scans"][0]["ID"] == "1"


def test_an_unbuilt_session_has_no_xml_document(client, sessions, admin_user):
    unassigned = PrearchiveSession.objects.get(project__isnull=True)
    response = client.get(unassigned.uri + "?format=xml", **auth("admin", "admin-pass-1"))
    assert response.status_code == 404 and b"not available" in response.content


def test_put_reloads_for_admins_only(client, sessions, admin_user, member):
    assert client.put("/data/prearchive", **auth("mike", "mike-pass-1")).status_code == 403
    assert client.put("/data/prearchive", **auth("admin", "admin-pass-1")).status_code == 200
