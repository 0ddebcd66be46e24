from __future__ import annotations

from xnatlite.models import AuditEvent, Project, ProjectMember, SiteConfig
from tests.xnatlite.test_site_config_api import basic


def test_put_creates_project_with_owner_and_default_code(client, member):
    SiteConfig.objects.update_or_create(pk=1, defaults={"default_project_auto_archive_setting": 4})
    r = client.put("/data/projects/NEWP?name=New%20one&description=Desc", **basic("mike", "mike-pass-1"))
    assert r.status_code == 201
    p = Project.objects.get(pk="NEWP")
    assert (p.name, p.description, p.prearchive_code) == ("New one", "Desc", 4)
    assert ProjectMember.objects.get(project=p).role == "owner"
    assert AuditEvent.objects.filter(action="project_create", project_id="NEWP").exists()


def test_put_existing_is_409(client, member, project):
    r = client.put(f"/data/projects/{project.id}", **basic("mike", "mike-pass-1"))
    assert r.status_code == 409


def test_bad_id_is_400(client, member):
    r = client.put("/data/projects/bad%20id!", **basic("mike", "mike-pass-1"))
    assert r.status_code == 400


def test_list_shows_only_the_users_projects(client, member, project):
    Project.objects.create(id="OTHER")
    r = client.get("/data/projects", **basic("mike", "mike-pass-1"))
    rows = r.json()["ResultSet"]["Result"]
    assert [row["ID"] for row in rows] == ["PROJ1"]
    assert rows[0]["name"] == "Project One"


def test_anonymous_list_is_401(client, db):
    assert client.get("/data/projects").status_code == 401
