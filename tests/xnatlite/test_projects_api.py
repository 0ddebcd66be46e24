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


def test_put_existing_is_idempotent_200_and_changes_nothing(client, member, project):
    """XNAT: PUT on an existing project answers 200 (pyxnat's create() PUTs every ancestor)."""
    r = client.put(f"/data/projects/{project.id}", **basic("mike", "mike-pass-1"))
    assert (r.status_code, r.content) == (200, b"PROJ1")
    assert Project.objects.get(pk="PROJ1").name == "Project One"
    assert not AuditEvent.objects.filter(action="project_update").exists()


def test_put_existing_with_fields_is_for_owners(client, member, owner, project):
    r = client.put(f"/data/projects/{project.id}?name=Renamed", **basic("mike", "mike-pass-1"))
    assert r.status_code == 403 and b"owners" in r.content
    assert Project.objects.get(pk="PROJ1").name == "Project One"
    r = client.put(f"/data/projects/{project.id}?xnat:projectData/name=Renamed", **basic("olivia", "olivia-pass-1"))
    assert r.status_code == 200
    assert Project.objects.get(pk="PROJ1").name == "Renamed"


def test_delete_is_for_owners_and_refuses_a_project_with_subjects(client, member, owner, project):
    from xnatlite.models import Subject

    Subject.objects.create(project=project, label="S1")
    assert client.delete("/data/projects/PROJ1", **basic("mike", "mike-pass-1")).status_code == 403
    r = client.delete("/data/projects/PROJ1", **basic("olivia", "olivia-pass-1"))
    assert r.status_code == 409 and b"Nothing was deleted" in r.content
    assert Project.objects.filter(pk="PROJ1").exists()
    Subject.objects.filter(project=project).delete()
    assert client.delete("/data/projects/PROJ1", **basic("olivia", "olivia-pass-1")).status_code == 200
    assert not Project.objects.filter(pk="PROJ1").exists()


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
