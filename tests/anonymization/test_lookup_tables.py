"""Lookup tables for ``lookup[]`` (issue 14) and the getURL switch: CSV uploads through the admin and REST,
validation, refusal of scripts naming a missing table, and the engine reading the tables at intake and
at archive time."""
from __future__ import annotations

import base64
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.forms.models import model_to_dict
from pydicom.dataset import Dataset

from anonymization.dicomedit import DicomEditRuntimeError
from anonymization.models import LookupTable
from anonymization.services import run_context_for, script_compile
from tests.dicom_factory import make_dataset
from tests.prearchive.conftest import receive
from xnatlite.models import Project, SiteConfig

pytestmark = pytest.mark.django_db

SITE_CSV = b"PID0001,SUBJ-A\nPID0002,SUBJ-B\n\"ID,with comma\",\"SUBJ \"\"C\"\"\"\n"
LOOKUP_SCRIPT = 'version "6.1"\n(0010,0020) := lookup["patients", (0010,0020)]\n'


def basic(user: str, password: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _site_form_data() -> dict:
    data = model_to_dict(SiteConfig.objects.get_or_create(pk=1)[0])
    return {k: ("" if v is None else v) for k, v in data.items() if v is not False}


# ------------------------------------------------------------------ uploads


def test_admin_uploads_a_site_table_from_csv(admin_client, admin_user):
    r = admin_client.post("/admin/anonymization/lookuptable/add/",
                          {"name": "patients", "project": "", "csv_file": SimpleUploadedFile("p.csv", SITE_CSV)})
    assert r.status_code == 302, r.content[:2000]
    table = LookupTable.objects.get(name="patients", project__isnull=True)
    assert table.entries == {"PID0001": "SUBJ-A", "PID0002": "SUBJ-B", "ID,with comma": 'SUBJ "C"'}
    assert table.row_count == 3 and table.updated_by == "admin"


@pytest.mark.parametrize("data, message", [
    (b"PID0001,SUBJ-A\nPID0002,SUBJ-B,extra\n", "Row 2: expected 2 columns (key,value), found 3."),
    (b"PID0001,SUBJ-A\nPID0001,SUBJ-B\n", "Row 2: the key &#x27;PID0001&#x27; is already in row 1."),
    (b",SUBJ-A\n", "Row 1: the key is empty."),
    (b"\xff\xfe\x00P\x00I", "The lookup table must be a UTF-8 text file (CSV)."),
    (b"\n\n", "The lookup table has no rows."),
    (b'PID0001,"unterminated\n', "not a valid CSV file"),
])
def test_admin_refuses_a_bad_csv_and_stores_nothing(admin_client, admin_user, data, message):
    r = admin_client.post("/admin/anonymization/lookuptable/add/",
                          {"name": "patients", "project": "", "csv_file": SimpleUploadedFile("p.csv", data)})
    assert r.status_code == 200
    assert message in r.content.decode()
    assert not LookupTable.objects.exists()


def test_project_owner_puts_gets_and_deletes_a_table_over_rest(client, owner, project):
    auth = basic("olivia", "olivia-pass-1")
    url = f"/data/projects/{project.pk}/config/anon/lookup/visits"
    r = client.put(url, data=b"S01,V1\nS02,V2\n", content_type="text/csv", **auth)
    assert r.status_code == 200 and r.json() == {"name": "visits", "project": "PROJ1", "rows": 2}
    r = client.get(url, **auth)
    assert r.status_code == 200 and r.content == b"S01,V1\nS02,V2\n"
    listed = client.get(f"/data/projects/{project.pk}/config/anon/lookup", **auth).json()
    assert [row["name"] for row in listed["ResultSet"]["Result"]] == ["visits"]
    r = client.put(url, data=b"S01,V1,x\n", content_type="text/csv", **auth)
    assert r.status_code == 400 and "Row 1: expected 2 columns" in r.content.decode()
    assert LookupTable.objects.get(name="visits").entries == {"S01": "V1", "S02": "V2"}  # unchanged
    assert client.delete(url, **auth).status_code == 200
    assert client.get(url, **auth).status_code == 404


def test_who_may_touch_lookup_tables(client, admin_user, owner, member, outsider, project):
    url = f"/data/projects/{project.pk}/config/anon/lookup/visits"
    assert client.put(url, data=b"a,b\n", content_type="text/csv",
                      **basic("mike", "mike-pass-1")).status_code == 403
    assert client.put(url, data=b"a,b\n", content_type="text/csv",
                      **basic("oscar", "oscar-pass-1")).status_code == 404
    assert client.put("/data/config/anon/lookup/site", data=b"a,b\n", content_type="text/csv",
                      **basic("olivia", "olivia-pass-1")).status_code == 403
    assert client.put("/data/config/anon/lookup/site", data=b"a,b\n", content_type="text/csv",
                      **basic("admin", "admin-pass-1")).status_code == 200
    assert not LookupTable.objects.filter(project=project).exists()


def test_a_multipart_upload_works_too(client, admin_user):
    r = client.post("/data/config/anon/lookup/patients", {"file": SimpleUploadedFile("p.csv", SITE_CSV)},
                    **basic("admin", "admin-pass-1"))
    assert r.status_code == 200 and r.json()["rows"] == 3


# ------------------------------------------------------------------ scripts naming tables


def test_a_site_script_naming_a_missing_table_is_refused_with_line_and_column(admin_client, admin_user):
    data = _site_form_data()
    data["sitewide_anonymization_script"] = LOOKUP_SCRIPT
    r = admin_client.post("/admin/xnatlite/siteconfig/1/change/", data)
    assert r.status_code == 200
    assert "2:23: lookup: there is no lookup table &#x27;patients&#x27;" in r.content.decode()
    LookupTable.objects.create(name="patients", entries={"PID0001": "SUBJ-A"}, row_count=1)
    assert admin_client.post("/admin/xnatlite/siteconfig/1/change/", data).status_code == 302


def test_a_project_script_sees_its_own_and_the_site_tables_but_not_another_projects(client, owner, project):
    other = Project.objects.create(id="OTHER", name="Other")
    LookupTable.objects.create(name="theirs", project=other, entries={"a": "b"}, row_count=1)
    LookupTable.objects.create(name="site_table", entries={"a": "b"}, row_count=1)
    LookupTable.objects.create(name="ours", project=project, entries={"a": "b"}, row_count=1)
    auth = basic("olivia", "olivia-pass-1")
    url = f"/data/projects/{project.pk}/config/anon/projects/{project.pk}?inbody=true"
    for name, status in (("ours", 200), ("site_table", 200), ("theirs", 400)):
        text = f'version "6.1"\n(0008,1030) := lookup["{name}", (0010,0020)]\n'
        r = client.put(url, data=text, content_type="text/plain", **auth)
        assert r.status_code == status, (name, r.content)
    assert "2:23: lookup: there is no lookup table 'theirs'" in r.content.decode()


def test_the_site_script_rest_path_refuses_a_missing_table(client, admin_user):
    r = client.put("/data/config/anon/script?inbody=true", data=LOOKUP_SCRIPT, content_type="text/plain",
                   **basic("admin", "admin-pass-1"))
    assert r.status_code == 400 and "2:23: lookup: there is no lookup table 'patients'" in r.content.decode()


# ------------------------------------------------------------------ the engine reads them


def test_intake_applies_the_site_script_with_the_site_tables(site, admin_client, admin_user):
    admin_client.post("/admin/anonymization/lookuptable/add/",
                      {"name": "patients", "project": "", "csv_file": SimpleUploadedFile("p.csv", SITE_CSV)})
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = LOOKUP_SCRIPT
    site.save()
    assert receive(make_dataset(PatientID="PID0002")).status == "stored"
    (path,) = Path(str(settings.PREARCHIVE_ROOT)).rglob("*.dcm")
    assert pydicom.dcmread(path).PatientID == "SUBJ-B"


def test_a_project_table_wins_over_a_site_table_of_the_same_name(project):
    LookupTable.objects.create(name="patients", entries={"PID0001": "FROM-SITE"}, row_count=1)
    LookupTable.objects.create(name="patients", project=project, entries={"PID0001": "FROM-PROJECT"}, row_count=1)
    script = script_compile(text=LOOKUP_SCRIPT)
    for project_id, expected in ((None, "FROM-SITE"), (project.pk, "FROM-PROJECT")):
        ds = Dataset()
        ds.PatientID = "PID0001"
        script.apply(ds, variables={}, run=run_context_for(project_id=project_id))
        assert ds.PatientID == expected


# ------------------------------------------------------------------ getURL only with dicomEditAllowGetUrl


class _SiteId(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = b"XNATLITE_SITE"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_get_url_runs_only_when_the_site_allows_it(site):
    server = HTTPServer(("127.0.0.1", 0), _SiteId)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/xapi/siteConfig/siteId"
        script = script_compile(text=f'version "6.1"\n\n(0010,1000) := getURL["{url}"]\n')
        ds = Dataset()
        with pytest.raises(DicomEditRuntimeError) as excinfo:
            script.apply(ds, variables={}, run=run_context_for(project_id=None))
        assert str(excinfo.value) == "line 3: getURL is disabled on this site (site setting dicomEditAllowGetUrl)"
        assert 0x00101000 not in ds
        site.dicom_edit_allow_get_url = True
        site.save()
        script.apply(ds, variables={}, run=run_context_for(project_id=None))
        assert ds.OtherPatientIDs == "XNATLITE_SITE"
    finally:
        server.shutdown()
