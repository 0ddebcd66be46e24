"""The project page for owners, in headless Chromium: a non-superuser creates a project, adds a member by
user name, sets and previews an anonymization script and changes the prearchive code, never touching the
Django admin. Plus the site setting that restricts project creation to site admins."""
from __future__ import annotations

import pytest
from django.conf import settings
from django.test import Client

from tests.conftest import screenshot
from tests.dicom_factory import write_dicom
from xnatlite.models import AuditEvent, Project, ProjectMember

SCRIPT = 'version "6.1"\n(0010,0010) := "ANON"\n(0008,1030) := project\n'


def _sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_owner_creates_and_manages_a_project_without_the_admin(live_server, browser_page, site, owner, member,
                                                               tmp_path):
    assert not owner.is_superuser and not owner.is_staff
    page = browser_page
    admin_requests = []
    page.on("request", lambda r: admin_requests.append(r.url) if "/admin/" in r.url and "logout" not in r.url else None)
    _sign_in(page, live_server, owner)

    page.goto(live_server.url + "/prearchive/")
    page.click("header >> text=Projects")
    page.fill("#id_project_id", "NEWP")
    page.fill("#id_name", "New project")
    page.click("#project-create-submit")
    page.wait_for_url("**/projects/NEWP/manage/")
    project = Project.objects.get(pk="NEWP")
    assert ProjectMember.objects.get(project=project, user=owner).role == "owner"
    screenshot(page, "project_page_created")

    # A member by user name (the admin wanted a numeric user ID).
    page.fill("#id_who", "mike")
    page.select_option("#id_role", "member")
    page.click("#member-add")
    page.wait_for_selector("#members tr[data-user='mike']")
    assert ProjectMember.objects.get(project=project, user=member).role == "member"
    # An unknown user gets a clear message and nothing changes.
    page.fill("#id_who", "nobody@example.org")
    page.click("#member-add")
    assert "No user has the user name or e-mail address 'nobody@example.org'" in page.inner_text(".messages")
    assert ProjectMember.objects.filter(project=project).count() == 2

    # A script that does not parse is refused with its line and column; a good one is saved.
    page.fill("#id_anon_script", 'version "6.1"\n(0010,0010 := "x"\n')
    page.check("#id_anon_script_enabled")
    page.click("#script-save")
    assert "2:" in page.inner_text(".messages .alert-error")
    project.refresh_from_db()
    assert project.anon_script == "" and not project.anon_script_enabled
    page.fill("#id_anon_script", SCRIPT)
    page.check("#id_anon_script_enabled")
    page.click("#script-save")
    page.wait_for_selector(".messages .alert-success")
    project.refresh_from_db()
    assert project.anon_script.replace("\r\n", "\n") == SCRIPT and project.anon_script_enabled

    # Preview the saved script on an uploaded DICOM file.
    dicom = write_dicom(tmp_path / "one.dcm", PatientName="Doe^Jane", StudyDescription="Brain")
    page.click("#script-preview")
    page.wait_for_url("**/projects/NEWP/manage/preview/")
    assert page.input_value("#id_script").replace("\r\n", "\n") == SCRIPT
    page.set_input_files("#id_dicom_file", str(dicom))
    page.fill("#id_project", "NEWP")
    page.click("#preview-submit")
    rows = page.inner_text("#preview-changes")
    assert "Doe^Jane" in rows and "ANON" in rows and "NEWP" in rows
    screenshot(page, "project_page_preview")

    # The prearchive code: from the site default (auto-archive) to the prearchive.
    page.goto(live_server.url + "/projects/NEWP/manage/")
    page.select_option("#id_prearchive_code", "0")
    page.click("#codes-save")
    page.wait_for_selector(".messages .alert-success")
    project.refresh_from_db()
    assert project.prearchive_code == 0
    assert page.input_value("#id_prearchive_code") == "0"

    # The settings: a series filter that does not compile is refused beside the field; a good one is saved.
    page.check("#id_series_import_filter_enabled")
    page.select_option("#id_series_import_filter_mode", "whitelist")
    page.fill("#id_series_import_filter", "T1.*\n(unclosed")
    page.click("#settings-save")
    assert page.locator(".field-series_import_filter .errorlist").count() == 1
    project.refresh_from_db()
    assert not project.series_import_filter_enabled
    page.fill("#id_series_import_filter", "T1.*")
    page.click("#settings-save")
    page.wait_for_selector(".messages .alert-success")
    project.refresh_from_db()
    assert project.series_import_filter_enabled and project.series_import_filter_mode == "whitelist"
    screenshot(page, "project_page_manage")

    actions = set(AuditEvent.objects.filter(project_id="NEWP").values_list("action", flat=True))
    assert {"project_create", "project_member_set", "project_anon_script", "project_prearchive_code",
            "project_settings_update"} <= actions
    assert admin_requests == []


@pytest.mark.django_db
def test_site_can_restrict_project_creation_to_admins(client, site, owner, admin_user, member):
    site.ui_allow_non_admin_project_creation = False
    site.save()
    client.force_login(owner)
    page = client.get("/projects/")
    assert b"Only site administrators create projects" in page.content and b"project-create" not in page.content
    assert client.post("/projects/", {"project_id": "NOPE"}).status_code == 403
    # REST too (XNAT's PUT /data/projects/ID).
    assert client.put("/data/projects/NOPE", HTTP_AUTHORIZATION=_basic("olivia", "olivia-pass-1")).status_code == 403
    assert not Project.objects.filter(pk="NOPE").exists()
    client.force_login(admin_user)
    assert client.post("/projects/", {"project_id": "ADMINP"}).status_code == 302
    assert Project.objects.filter(pk="ADMINP").exists()


@pytest.mark.django_db
def test_members_and_outsiders_do_not_manage(client, site, member, outsider, owner):
    client.force_login(member)
    assert client.get("/projects/PROJ1/manage/").status_code == 403
    assert client.post("/projects/PROJ1/manage/", {"section": "codes", "prearchive_code": "5",
                                                   "quarantine_code": "0"}).status_code == 403
    client.force_login(outsider)
    assert client.get("/projects/PROJ1/manage/").status_code == 404
    assert client.get("/projects/PROJ1/manage/preview/").status_code == 404
    assert Project.objects.get(pk="PROJ1").prearchive_code == 0


@pytest.mark.django_db
def test_last_owner_stays_and_members_by_email(client, site, owner, member):
    client.force_login(owner)
    project = Project.objects.get(pk="PROJ1")
    response = client.post("/projects/PROJ1/manage/", {"section": "member_remove", "user": str(owner.pk)},
                           follow=True)
    assert "at least one owner" in response.content.decode()
    assert ProjectMember.objects.filter(project=project, user=owner).exists()
    client.post("/projects/PROJ1/manage/", {"section": "member_add", "who": "MIKE@example.org", "role": "owner"})
    assert ProjectMember.objects.get(project=project, user=member).role == "owner"


def _basic(user: str, password: str) -> str:
    import base64

    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
