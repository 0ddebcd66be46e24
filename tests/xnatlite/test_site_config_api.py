"""/xapi/siteConfig: every form of the API, validation, and who may call it."""
from __future__ import annotations

import base64
import os
import json

import pytest

from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT
from xnatlite.models import AuditEvent, SiteConfig
from xnatlite.selectors import site_config_get


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


@pytest.fixture
def as_admin(admin_user):
    return basic("admin", "admin-pass-1")


def test_get_all_returns_xnat_defaults(client, as_admin):
    response = client.get("/xapi/siteConfig", **as_admin)
    assert response.status_code == 200
    data = response.json()
    assert data["uiHideCompressedUploaderUploadOption"] is False
    assert data["uiHideXnatUploadAssistantDownload"] is True
    assert data["receivedFileUser"] == "admin"
    assert data["sessionXmlRebuilderRepeat"] == 60000
    assert data["sessionXmlRebuilderInterval"] == 5
    assert data["reloadPrearcDatabaseOnStartup"] is False
    assert data["enableSitewideAnonymizationScript"] is True
    assert data["sitewideAnonymizationScript"] == DEFAULT_SITE_ANON_SCRIPT
    assert data["enableSitewideSeriesImportFilter"] is False
    assert data["sitewideSeriesImportFilterMode"] == "blacklist"
    assert data["sitewideSeriesImportFilter"] == ""
    assert data["sitewidePetTracers"].split() == ["PIB", "FDG"]
    assert data["sitewidePetMr"] == ""


def test_get_values_returns_map_of_requested_keys_and_skips_unknown(client, as_admin):
    response = client.get("/xapi/siteConfig/values/sessionXmlRebuilderRepeat,receivedFileUser,nope", **as_admin)
    assert response.status_code == 200
    assert response.json() == {"sessionXmlRebuilderRepeat": 60000, "receivedFileUser": "admin"}


def test_get_one_property_is_bare_json(client, as_admin):
    response = client.get("/xapi/siteConfig/enableSitewideAnonymizationScript", **as_admin)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response.content == b"true"
    assert client.get("/xapi/siteConfig/receivedFileUser", **as_admin).content == b'"admin"'
    assert client.get("/xapi/siteConfig/sessionXmlRebuilderRepeat", **as_admin).content == b"60000"


def test_unknown_property_is_404(client, as_admin):
    response = client.get("/xapi/siteConfig/noSuchThing", **as_admin)
    assert response.status_code == 404
    assert b"No site configuration property named noSuchThing" in response.content


def test_post_json_map_changes_several(client, as_admin):
    body = {"sessionXmlRebuilderInterval": 2, "sitewidePetTracers": "PIB FDG NAV4694",
            "enableSitewideSeriesImportFilter": True, "sitewideSeriesImportFilterMode": "whitelist",
            "sitewideSeriesImportFilter": "T1\nT2"}
    response = client.post("/xapi/siteConfig", json.dumps(body), content_type="application/json", **as_admin)
    assert response.status_code == 200, response.content
    config = SiteConfig.objects.get()
    assert config.session_xml_rebuilder_interval == 2
    assert config.pet_tracer_list == ["PIB", "FDG", "NAV4694"]
    assert config.enable_sitewide_series_import_filter is True
    assert config.sitewide_series_import_filter_mode == "whitelist"
    assert AuditEvent.objects.filter(action="site_config_update", actor="admin").exists()


def test_post_form_map(client, as_admin):
    response = client.post("/xapi/siteConfig", {"uiHideCompressedUploaderUploadOption": "true",
                                                "sessionXmlRebuilderRepeat": "15000"}, **as_admin)
    assert response.status_code == 200, response.content
    config = SiteConfig.objects.get()
    assert config.ui_hide_compressed_uploader_upload_option is True
    assert config.session_xml_rebuilder_repeat == 15000


def test_post_one_property_text_body(client, as_admin):
    response = client.post("/xapi/siteConfig/sitewidePetMr", "separate", content_type="text/plain", **as_admin)
    assert response.status_code == 200, response.content
    assert SiteConfig.objects.get().sitewide_pet_mr == "separate"
    response = client.post("/xapi/siteConfig/sitewidePetMr", " pet \n", content_type="text/plain", **as_admin)
    assert response.status_code == 200, response.content
    assert SiteConfig.objects.get().sitewide_pet_mr == "pet"


def test_post_unknown_property_is_404(client, as_admin):
    response = client.post("/xapi/siteConfig/noSuchThing", "1", content_type="text/plain", **as_admin)
    assert response.status_code == 404


@pytest.mark.parametrize(
    "prop, value, message",
    [
        ("receivedFileUser", "ghost", "The user 'ghost' does not exist."),
        ("sessionXmlRebuilderRepeat", "0", "greater than or equal to 1"),
        ("sessionXmlRebuilderRepeat", "-5", "greater than or equal to"),
        ("sessionXmlRebuilderInterval", "0", "greater than or equal to 1"),
        ("sessionXmlRebuilderInterval", "soon", "Enter a whole number"),
        ("sitewidePetMr", "both", "Select a valid choice"),
        ("sitewideSeriesImportFilterMode", "greylist", "Select a valid choice"),
    ],
)
def test_bad_values_are_400_with_reason_and_change_nothing(client, as_admin, prop, value, message):
    before = client.get("/xapi/siteConfig", **as_admin).json()
    response = client.post(f"/xapi/siteConfig/{prop}", value, content_type="text/plain", **as_admin)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert prop in response.content.decode()
    assert client.get("/xapi/siteConfig", **as_admin).json() == before


def test_received_file_user_must_be_active_superuser(client, as_admin, django_user_model):
    django_user_model.objects.create_user("plain", password="x-pass-123")
    sleepy = django_user_model.objects.create_superuser("sleepy", password="x-pass-123")
    sleepy.is_active = False
    sleepy.save()
    r = client.post("/xapi/siteConfig/receivedFileUser", "plain", content_type="text/plain", **as_admin)
    assert r.status_code == 400 and "is not a site administrator" in r.content.decode()
    r = client.post("/xapi/siteConfig/receivedFileUser", "sleepy", content_type="text/plain", **as_admin)
    assert r.status_code == 400 and "is disabled" in r.content.decode()
    django_user_model.objects.create_superuser("boss", password="x-pass-123")
    r = client.post("/xapi/siteConfig/receivedFileUser", "boss", content_type="text/plain", **as_admin)
    assert r.status_code == 200
    assert SiteConfig.objects.get().received_file_user == "boss"


def test_invalid_filter_regex_names_the_line(client, as_admin):
    body = {"sitewideSeriesImportFilterMode": "blacklist", "sitewideSeriesImportFilter": "LOCALIZER\n# c\n[unclosed"}
    r = client.post("/xapi/siteConfig", json.dumps(body), content_type="application/json", **as_admin)
    assert r.status_code == 400
    text = r.content.decode()
    assert "sitewideSeriesImportFilter" in text and "line 3" in text


def test_bad_anonymization_script_is_refused_with_line_and_column(client, as_admin):
    script = 'version "6.1"\n(0010,0010) := "unterminated\n'
    r = client.post("/xapi/siteConfig/sitewideAnonymizationScript", script, content_type="text/plain", **as_admin)
    assert r.status_code == 400
    assert "sitewideAnonymizationScript: 2:16: unterminated string" in r.content.decode()
    assert site_config_get().sitewide_anonymization_script == DEFAULT_SITE_ANON_SCRIPT


def test_anonymous_is_401(client, db):
    for path in ("/xapi/siteConfig", "/xapi/siteConfig/receivedFileUser", "/xapi/siteConfig/values/a,b"):
        response = client.get(path)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Basic")
    assert client.post("/xapi/siteConfig", {"sessionXmlRebuilderInterval": "3"}).status_code == 401


def test_wrong_password_is_401(client, admin_user):
    assert client.get("/xapi/siteConfig", **basic("admin", "wrong")).status_code == 401


def test_non_admin_can_neither_read_nor_write(client, member):
    """Updated (issue 16 item 10): non-admins used to read every setting (inbox path, scripts)."""
    auth = basic("mike", "mike-pass-1")
    assert client.get("/xapi/siteConfig/receivedFileUser", **auth).status_code == 403
    r = client.post("/xapi/siteConfig/sessionXmlRebuilderInterval", "3", content_type="text/plain", **auth)
    assert r.status_code == 403
    r = client.post("/xapi/siteConfig", {"sessionXmlRebuilderInterval": "3"}, **auth)
    assert r.status_code == 403
    assert site_config_get().session_xml_rebuilder_interval == 5


SETTINGS_READS = ("/xapi/siteConfig", "/xapi/siteConfig/inboxPath", "/xapi/siteConfig/sitewideAnonymizationScript",
                  "/xapi/siteConfig/values/inboxPath,receivedFileUser", "/xapi/siteConfig/noSuchThing")
PUBLIC_READS = ("/xapi/siteConfig/buildInfo", "/xapi/siteConfig/buildInfo/version", "/xapi/siteConfig/uptime",
                "/data/version")


@pytest.mark.parametrize("role, expected", [("anonymous", 401), ("uploader", 403), ("owner", 403),
                                            ("admin", 200)])
def test_site_settings_are_read_by_site_admins_only_and_build_info_by_all(
        client, admin_user, member, owner, tmp_path, role, expected):
    config = site_config_get()
    config.inbox_path = str(tmp_path / "secret-inbox")
    config.save()
    auth = {"anonymous": {}, "uploader": basic("mike", "mike-pass-1"), "owner": None,
            "admin": basic("admin", "admin-pass-1")}[role]
    if role == "owner":
        client.force_login(owner)
        auth = {}
    for path in SETTINGS_READS:
        r = client.get(path, **auth)
        want = 404 if (expected == 200 and path.endswith("noSuchThing")) else expected
        assert r.status_code == want, (path, r.status_code)
        if want != 200:
            assert "secret-inbox" not in r.content.decode()
    assert ("secret-inbox" in client.get("/xapi/siteConfig", **auth).content.decode()) is (role == "admin")
    for path in PUBLIC_READS:
        assert client.get(path, **auth).status_code == 200, path
    assert client.get("/xapi/siteConfig/buildInfo/version", **auth).json() == \
        client.get("/xapi/siteConfig/buildInfo", **auth).json()["version"]


# ------------------------------------------------------------------ writes by any site admin (issue 13 item 4)

# One setting of each settings group (xnatlite.site_settings.GROUPS), a new value and how it reads back.
GROUP_SAMPLES = {
    "Available Upload Methods": ("uiHideCompressedUploaderUploadOption", True, True),
    "Session Builder": ("sessionXmlRebuilderInterval", 7, 7),
    "Site-wide Anonymization Script": ("enableSitewideAnonymizationScript", False, False),
    "Site-wide Series Import Filter": ("sitewideSeriesImportFilter", "LOCALIZER", "LOCALIZER"),
    "Site-wide PET Tracers": ("sitewidePetTracers", "PIB\nFDG\nNAV4694", "PIB\nFDG\nNAV4694"),
    "Site-wide Handling of PET-MR Sessions": ("sitewidePetMr", "separate", "separate"),
    "Projects, Receiver and Uploads": ("uploadMaxEntries", 5000, 5000),
}


@pytest.fixture
def siteboss(db, django_user_model):
    """A site whose only admin is not called 'admin', while receivedFileUser still says 'admin'."""
    django_user_model.objects.create_superuser("siteboss", "boss@example.org", "boss-pass-1")
    assert site_config_get().received_file_user == "admin"
    assert not django_user_model.objects.filter(username="admin").exists()
    return basic("siteboss", "boss-pass-1")


def _read_back(client, auth, prop):
    return client.get(f"/xapi/siteConfig/{prop}", **auth).json()


@pytest.mark.parametrize("group", sorted(GROUP_SAMPLES))
def test_an_admin_not_called_admin_changes_each_group_by_property(client, siteboss, group):
    prop, value, expected = GROUP_SAMPLES[group]
    body = json.dumps(value)
    r = client.post(f"/xapi/siteConfig/{prop}", body, content_type="application/json", **siteboss)
    assert r.status_code == 200, r.content
    assert _read_back(client, siteboss, prop) == expected
    assert AuditEvent.objects.filter(action="site_config_update", actor="siteboss",
                                     details__properties=[prop]).exists()


def test_an_admin_not_called_admin_changes_every_group_in_one_map(client, siteboss):
    from xnatlite.site_settings import GROUPS

    assert set(GROUP_SAMPLES) <= {title for title, _ in GROUPS}
    body = {prop: value for prop, value, _ in GROUP_SAMPLES.values()}
    r = client.post("/xapi/siteConfig", json.dumps(body), content_type="application/json", **siteboss)
    assert r.status_code == 200, r.content
    values = client.get("/xapi/siteConfig", **siteboss).json()
    assert {prop: values[prop] for prop, _, _ in GROUP_SAMPLES.values()} == \
        {prop: expected for prop, _, expected in GROUP_SAMPLES.values()}
    assert values["receivedFileUser"] == "admin"  # untouched, though it names no user


def test_the_received_file_user_is_still_checked_when_it_is_what_changes(client, siteboss):
    r = client.post("/xapi/siteConfig/receivedFileUser", "ghost", content_type="text/plain", **siteboss)
    assert r.status_code == 400 and "The user 'ghost' does not exist." in r.content.decode()
    r = client.post("/xapi/siteConfig/receivedFileUser", "siteboss", content_type="text/plain", **siteboss)
    assert r.status_code == 200
    assert site_config_get().received_file_user == "siteboss"


def test_a_change_is_checked_with_what_it_makes_inconsistent(client, siteboss):
    """Forbidding auto-archive while new projects default to auto-archive (4) is refused; a broken stored
    script refuses enabling the script, but no unrelated write."""
    r = client.post("/xapi/siteConfig/projectAllowAutoArchive", "false", content_type="application/json",
                    **siteboss)
    assert r.status_code == 400 and "defaultProjectAutoArchiveSetting" in r.content.decode()
    assert site_config_get().project_allow_auto_archive is True
    SiteConfig.objects.update(enable_sitewide_anonymization_script=False,
                              sitewide_anonymization_script='version "6.1"\n(0010,0010) := "open\n')
    r = client.post("/xapi/siteConfig/sitewidePetMr", "pet", content_type="text/plain", **siteboss)
    assert r.status_code == 200, r.content
    r = client.post("/xapi/siteConfig/enableSitewideAnonymizationScript", "true", content_type="application/json",
                    **siteboss)
    assert r.status_code == 400 and "sitewideAnonymizationScript" in r.content.decode()
    assert site_config_get().enable_sitewide_anonymization_script is False


def test_the_first_admin_scripts_run_creates_changes_settings(client, db, monkeypatch, tmp_path, settings):
    from django.core.management import call_command

    settings.VAR_DIR = tmp_path
    monkeypatch.setenv("XNATLITE_ADMIN_PASSWORD", "first-admin-pass-1")
    call_command("ensure_site_admin", stdout=open(os.devnull, "w"))
    auth = basic("admin", "first-admin-pass-1")
    r = client.post("/xapi/siteConfig", json.dumps({"sessionXmlRebuilderInterval": 9}),
                    content_type="application/json", **auth)
    assert r.status_code == 200, r.content
    assert _read_back(client, auth, "sessionXmlRebuilderInterval") == 9
