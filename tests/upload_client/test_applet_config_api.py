"""XNAT's config paths for the uploader's project settings (tool ``applet``)."""
from __future__ import annotations

import base64

import pytest

from xnatlite.models import AuditEvent, Project

pytestmark = pytest.mark.django_db


def auth(user, password):
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


OWNER = ("olivia", "olivia-pass-1")
MEMBER = ("mike", "mike-pass-1")


def test_get_defaults_as_xnat_desktop_client_reads_them(client, project, owner, member):
    base = "/data/projects/PROJ1/config/applet/"
    q = "?contents=true&accept-not-found=true"
    assert client.get(base + "allow-create-subject" + q, **auth(*MEMBER)).content == b"true"
    assert client.get(base + "require-date" + q, **auth(*MEMBER)).content == b"false"
    assert client.get(base + "allow-bulk-upload" + q, **auth(*MEMBER)).content == b"true"
    empty = client.get(base + "default-session-labeling-scheme" + q, **auth(*MEMBER))
    assert empty.status_code == 204 and empty.content == b""
    assert client.get(base + "default-session-labeling-scheme?contents=true", **auth(*MEMBER)).status_code == 404
    table = client.get(base + "require-date", **auth(*MEMBER)).json()["ResultSet"]["Result"][0]
    assert table["tool"] == "applet" and table["path"] == "require-date" and table["contents"] == "false"


def test_owner_puts_values_on_both_paths(client, project, owner):
    r = client.put("/data/projects/PROJ1/config/applet/require-date", "true", content_type="text/plain",
                   **auth(*OWNER))
    assert r.status_code == 200
    r = client.put("/data/config/projects/PROJ1/applet/default-session-labeling-scheme",
                   'makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]',
                   content_type="text/plain", **auth(*OWNER))
    assert r.status_code == 200
    r = client.put("/data/projects/PROJ1/config/applet/allow-create-subject?inbody=true", "false",
                   content_type="text/plain", **auth(*OWNER))
    assert r.status_code == 200
    project = Project.objects.get(pk="PROJ1")
    assert project.require_date and not project.allow_create_subject
    assert project.default_session_labeling_scheme.startswith("makeSessionLabel[")
    got = client.get("/data/config/projects/PROJ1/applet/require-date?contents=true", **auth(*OWNER))
    assert got.content == b"true"
    assert AuditEvent.objects.filter(action="project_applet_setting", project_id="PROJ1").count() == 3
    r = client.put("/data/projects/PROJ1/config/applet/require-date?status=disabled", **auth(*OWNER))
    assert r.status_code == 200 and not Project.objects.get(pk="PROJ1").require_date


def test_bad_puts_are_refused(client, project, owner, member, outsider):
    url = "/data/projects/PROJ1/config/applet/require-date"
    assert client.put(url, "true", content_type="text/plain", **auth(*MEMBER)).status_code == 403
    assert client.get(url, **auth("oscar", "oscar-pass-1")).status_code == 404
    r = client.put(url, "", content_type="text/plain", **auth(*OWNER))
    assert r.status_code == 400 and b"either the status" in r.content
    r = client.put(url, "maybe", content_type="text/plain", **auth(*OWNER))
    assert r.status_code == 400 and b"true or false" in r.content
    r = client.put("/data/projects/PROJ1/config/applet/default-subject-labeling-scheme", "weird",
                   content_type="text/plain", **auth(*OWNER))
    assert r.status_code == 400
    assert client.get("/data/projects/PROJ1/config/applet/nope", **auth(*OWNER)).status_code == 404
    assert client.get(url).status_code == 401
    assert not Project.objects.get(pk="PROJ1").require_date
