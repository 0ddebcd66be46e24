"""The config paths the XNAT Desktop Client reads (reference/xnat.md §2, §6): series import filter, PET
tracers, separatePETMR, the site-wide allow-create-subject applet value, and the anon script status."""
from __future__ import annotations

import json

import pytest

from tests.archive.conftest import client_for
from xnatlite.models import Project, SiteConfig

pytestmark = pytest.mark.django_db


def test_series_import_filter_site_and_project(project, member, outsider, site):
    SiteConfig.objects.filter(pk=1).update(enable_sitewide_series_import_filter=True,
                                           sitewide_series_import_filter_mode="blacklist",
                                           sitewide_series_import_filter="^.*Sheet.*$\n^.*Scanned.*$")
    c = client_for(member)
    raw = c.get("/data/config/seriesImportFilter/config?contents=true")
    assert json.loads(raw.content) == {"mode": "blacklist", "enabled": True, "list": "^.*Sheet.*$\n^.*Scanned.*$"}
    row = c.get("/data/config/seriesImportFilter/config?format=json").json()["ResultSet"]["Result"][0]
    assert (row["tool"], row["path"], row["status"]) == ("seriesImportFilter", "config", "enabled")
    # A project without its own filter: not found (204 with accept-not-found), as XNAT.
    url = "/data/projects/PROJ1/config/seriesImportFilter/config"
    assert c.get(f"{url}?contents=true").status_code == 404
    assert c.get(f"{url}?contents=true&accept-not-found=true").status_code == 204
    Project.objects.filter(pk="PROJ1").update(series_import_filter_enabled=True, series_import_filter_mode="modalityMap",
                                              series_import_filter="PT: '#Modality#' == 'PT'\nMR: '#Modality#' != 'PT'")
    body = json.loads(c.get(f"{url}?contents=true").content)
    assert body == {"mode": "modalityMap", "enabled": True, "projectId": "PROJ1", "PT": "'#Modality#' == 'PT'",
                    "MR": "'#Modality#' != 'PT'"}
    assert client_for(outsider).get(url).status_code == 404
    assert c.put(f"{url}?inbody=true", "x", content_type="text/plain").status_code == 405


def test_tracers_petmr_and_allow_create_subject(project, member, site):
    SiteConfig.objects.filter(pk=1).update(sitewide_pet_tracers="PIB\nFDG", sitewide_pet_mr="separate")
    c = client_for(member)
    assert c.get("/data/config/tracers/tracers?contents=true").content.decode().split() == ["PIB", "FDG"]
    url = "/data/projects/PROJ1/config/tracers/tracers?contents=true&accept-not-found=true"
    assert c.get(url).status_code == 204  # the project uses the site list
    Project.objects.filter(pk="PROJ1").update(pet_tracers_enabled=True, pet_tracers="FBB")
    assert c.get(url).content.decode() == "FBB"
    assert c.get("/data/config/separatePETMR/config?contents=true").content == b"separate"
    assert c.get("/data/projects/PROJ1/config/separatePETMR/config?contents=true").status_code == 404
    Project.objects.filter(pk="PROJ1").update(pet_mr="pet")
    assert c.get("/data/projects/PROJ1/config/separatePETMR/config?contents=true").content == b"pet"
    # No site-wide applet value: not found, and the client allows creating subjects (XNAT's fresh state).
    site_wide = "/data/config/applet/allow-create-subject?contents=true&accept-not-found=true"
    assert c.get(site_wide).status_code == 204
    assert c.get("/data/config/applet/unknown-setting").status_code == 404
    project_wide = "/data/projects/PROJ1/config/applet/allow-create-subject?contents=true&accept-not-found=true"
    assert c.get(project_wide).content == b"true"


def test_anon_script_status_for_the_client(project, member, site):
    Project.objects.filter(pk="PROJ1").update(anon_script="-(0010,0030)\n", anon_script_enabled=True)
    row = client_for(member).get("/data/projects/PROJ1/config/anon/projects/PROJ1?format=json").json()
    assert row["ResultSet"]["Result"][0]["status"] == "enabled"
    assert client_for(member).get("/xapi/anonymize/projects/PROJ1/enabled").content.strip() == b"true"
