"""The archive's data REST through Django's test client: formats, lookups, catalogs, writes, permissions, and
every path walked with bad IDs (never a 500)."""
from __future__ import annotations

import csv
import io
import zipfile
from xml.etree import ElementTree as ET

import pytest
from pydicom import dcmread

from tests.archive.conftest import client_for, ready_session, send_study
from tests.xnatlite.test_roles_by_url import all_routes
from xnatlite.archive.data import subject_id
from xnatlite.models import ImageSession, Subject

pytestmark = pytest.mark.django_db
XNAT = "{http://nrg.wustl.edu/xnat}"


@pytest.fixture
def archived(project, site):
    from prearchive.models import PrearchiveSession
    from prearchive.services.archive import session_archive, session_archive_request
    from prearchive.services.builder import session_build

    study = send_study(project="PROJ1", label="pre", series=((1, "MR", 2), (2, "MR", 1)), RepetitionTime=2300,
                       EchoTime=3, FlipAngle=9, PixelSpacing=[1, 1], SliceThickness=2, MagneticFieldStrength=3)
    pre = PrearchiveSession.objects.get(tag=study)
    S = PrearchiveSession.Status
    session_build(session_id=pre.pk, expected=(S.RECEIVING, S.QUEUED_BUILDING))
    session_archive_request(session=PrearchiveSession.objects.get(pk=pre.pk), actor="t", subject="S1", label="E1")
    assert session_archive(session_id=pre.pk) == "archived"
    return ImageSession.objects.get(label="E1")


def test_listings_in_json_csv_xml_html_and_columns(archived, collaborator):
    c = client_for(collaborator)
    rows = c.get("/data/projects/PROJ1/experiments?format=json").json()["ResultSet"]["Result"]
    assert [(r["ID"], r["label"], r["xsiType"]) for r in rows] == [(archived.accession_id, "E1", "xnat:mrSessionData")]
    table = list(csv.DictReader(io.StringIO(c.get("/data/projects/PROJ1/subjects?format=csv").content.decode())))
    assert [(r["label"], r["ID"]) for r in table] == [("S1", subject_id(archived.subject))]
    root = ET.fromstring(c.get("/data/projects?format=xml").content)
    assert [cell.text for cell in root.iter("{http://nrg.wustl.edu/xdat}cell")][0] == "PROJ1"
    assert b"<table>" in c.get("/data/experiments?format=html").content
    narrow = c.get("/data/projects/PROJ1/subjects?columns=label").json()["ResultSet"]["Result"][0]
    assert set(narrow) == {"label", "ID", "URI", "xsiType"}
    assert c.get("/data/projects?format=bogus").status_code == 400


def test_experiment_by_id_and_label_xml_in_xnats_namespace(archived, member):
    c = client_for(member)
    by_id = c.get(f"/data/experiments/{archived.accession_id}?format=json").json()["items"][0]
    by_label = c.get("/data/projects/PROJ1/experiments/E1?format=json").json()["items"][0]
    assert by_id == by_label and by_id["data_fields"]["subject_ID"] == subject_id(archived.subject)
    root = ET.fromstring(c.get("/data/projects/PROJ1/subjects/S1/experiments/E1?format=xml").content)
    assert root.tag == XNAT + "MRSession" and root.get("label") == "E1" and root.get("project") == "PROJ1"
    scans = root.find(XNAT + "scans")
    assert [s.get("ID") for s in scans] == ["1", "2"]
    assert scans[0].get("{http://www.w3.org/2001/XMLSchema-instance}type") == "xnat:mrScanData"
    assert scans[0].find(f"{XNAT}parameters/{XNAT}tr").text == "2300"


def test_scan_fields_catalog_files_and_bytes(archived, member):
    c = client_for(member)
    scan = c.get(f"/data/experiments/{archived.accession_id}/scans/1").json()["items"][0]["data_fields"]
    assert (scan["frames"], scan["quality"], scan["parameters/te"], scan["parameters/flip"]) == (2, "usable", "3", "9")
    assert (scan["parameters/voxelRes/z"], scan["fieldStrength"]) == ("2", "3")
    from xnatlite.archive.data import catalog_path

    catalog = catalog_path(archived, archived.scans.get(scan_id="1"))
    assert catalog.is_file()  # written at archive time, where the resource points
    entries = ET.fromstring(catalog.read_bytes()).iter("{http://nrg.wustl.edu/catalog}entry")
    files = c.get(f"/data/experiments/{archived.accession_id}/scans/1/resources/DICOM/files").json()
    rows = files["ResultSet"]["Result"]
    assert sorted(e.get("URI") for e in entries) == sorted(r["Name"] for r in rows)
    assert {(r["collection"], r["file_format"], r["file_content"]) for r in rows} == {("DICOM", "DICOM", "RAW")}
    body = b"".join(c.get(rows[0]["URI"]).streaming_content)
    assert dcmread(io.BytesIO(body)).SeriesNumber == 1 and str(len(body)) == rows[0]["Size"]
    # A catalog removed from an existing archive is written again when the session is read.
    catalog.unlink()
    assert c.get(f"/data/experiments/{archived.accession_id}/scans").status_code == 200
    assert catalog.is_file()


def test_zips_at_experiment_scan_and_resource_level(archived, member):
    c = client_for(member)
    base = f"/data/experiments/{archived.accession_id}"
    for url, count in ((f"{base}/scans/ALL/files?format=zip", 3), (f"{base}?format=zip", 3),
                       (f"{base}/scans/2/files?format=zip", 1), (f"{base}/scans/1/resources/DICOM/files?format=zip", 2),
                       (f"{base}/scans/1,2/files?format=zip", 3)):
        response = c.get(url)
        assert response.status_code == 200, url
        zf = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
        assert len(zf.namelist()) == count, url
        assert all(dcmread(io.BytesIO(zf.read(n))).Modality == "MR" for n in zf.namelist())


def test_subject_put_is_create_or_200_and_delete_for_owners(project, member, owner, collaborator, site):
    r = client_for(member).put("/data/projects/PROJ1/subjects/NEW1?xsiType=xnat:subjectData")
    created = Subject.objects.get(project_id="PROJ1", label="NEW1")
    assert (r.status_code, r.content.decode()) == (201, subject_id(created))
    again = client_for(member).put("/data/projects/PROJ1/subjects/NEW1")
    assert (again.status_code, again.content.decode()) == (200, subject_id(created))
    assert client_for(collaborator).put("/data/projects/PROJ1/subjects/NEW2").status_code == 403
    assert client_for(member).put("/data/projects/PROJ1/subjects/bad%20label!").status_code == 400
    assert client_for(member).put("/data/projects/PROJ1/subjects/X?xsiType=xnat:nothing").status_code == 400
    assert not Subject.objects.filter(label__in=["NEW2", "X"]).exists()
    assert client_for(member).delete("/data/projects/PROJ1/subjects/NEW1").status_code == 403
    assert client_for(owner).delete(f"/data/projects/PROJ1/subjects/{subject_id(created)}").status_code == 200
    assert not Subject.objects.filter(label="NEW1").exists()


def test_subject_with_experiments_is_not_deleted(archived, owner):
    r = client_for(owner).delete("/data/projects/PROJ1/subjects/S1")
    assert r.status_code == 409 and b"Nothing was deleted" in r.content
    assert ImageSession.objects.filter(pk=archived.pk).exists()


def test_outsiders_see_nothing_and_quarantine_is_for_owners(archived, outsider, member, owner, client):
    from xnatlite.models import Project

    for url in ("/data/projects/PROJ1", "/data/projects/PROJ1/subjects", f"/data/experiments/{archived.accession_id}",
                f"/data/subjects/{subject_id(archived.subject)}"):
        assert client_for(outsider).get(url).status_code == 404, url
        assert client.get(url).status_code == 401, url
    assert client_for(outsider).get("/data/experiments").json()["ResultSet"]["Result"] == []
    assert client_for(outsider).put("/data/projects/PROJ1/subjects/Z").status_code == 404
    ImageSession.objects.filter(pk=archived.pk).update(quarantined=True)
    assert client_for(member).get("/data/projects/PROJ1/experiments").json()["ResultSet"]["Result"] == []
    assert client_for(owner).get("/data/projects/PROJ1/experiments/E1").status_code == 200
    assert Project.objects.filter(pk="PROJ1").exists()


def test_listing_filters_and_bad_xsi_type(archived, member):
    c = client_for(member)
    assert len(c.get("/data/experiments?xsiType=xnat:mrSessionData").json()["ResultSet"]["Result"]) == 1
    assert c.get("/data/experiments?xsiType=xnat:petSessionData").json()["ResultSet"]["Result"] == []
    assert len(c.get("/data/experiments?label=E*").json()["ResultSet"]["Result"]) == 1
    bad = c.get("/data/experiments?xsiType=xnat:unicornData")
    assert bad.status_code == 400 and b"xsiType" in bad.content


BAD = {"project_id": "NOPROJ", "subject": "NOSUBJ", "experiment": "NOEXP", "scan": "99", "scans": "98,99",
       "resource": "NORES", "file_name": "nofile.dcm", "schema": "noschema", "element": "xnat:noData"}


def test_every_data_path_with_bad_ids_answers_404_or_405_never_500(archived, admin_user, member):
    """Each new path, with unknown IDs at each level in turn, for a site admin and a member."""
    routes = [r for r in all_routes() if r.startswith(("data/projects", "data/subjects", "data/experiments",
                                                        "xapi/schemas", "data/search"))
              and "{" in r and "config" not in r and "_code" not in r]
    assert len(routes) > 40
    good = {"project_id": "PROJ1", "subject": "S1", "experiment": "E1", "scan": "1", "scans": "1",
            "resource": "DICOM", "schema": "xnat", "element": "xnat:mrSessionData", "file_name": "x.dcm"}
    creating = {"data/projects/{project_id}", "data/projects/{project_id}/subjects/{subject}"}  # PUT creates
    seen = 0
    for user in (admin_user, member):
        c = client_for(user)
        for route in routes:
            names = [n for n in BAD if "{" + n + "}" in route]
            for wrong in names:
                values = {n: (BAD[n] if n == wrong else good[n]) for n in names}
                url = "/" + route.format(**values)
                for method in ("get", "delete") if route in creating else ("get", "put", "delete"):
                    response = getattr(c, method)(url)
                    seen += 1
                    assert response.status_code in (400, 403, 404, 405), (method, url, response.status_code)
                    if response.status_code != 405:
                        assert response.content.strip(), (method, url)
    assert seen > 300
    assert ImageSession.objects.filter(label="E1").exists() and Subject.objects.filter(label="S1").exists()


def test_archive_catalogs_command_writes_missing_catalogs(archived):
    from django.core.management import call_command

    from xnatlite.archive.data import catalog_path

    paths = [catalog_path(archived, s) for s in archived.scans.all()]
    for path in paths:
        path.unlink()
    out = io.StringIO()
    call_command("archive_catalogs", stdout=out)
    assert out.getvalue().startswith("2 catalog(s) written") and all(p.is_file() for p in paths)
    out = io.StringIO()
    call_command("archive_catalogs", stdout=out)
    assert out.getvalue().startswith("0 catalog(s) written")
    call_command("archive_catalogs", "--force", stdout=(out := io.StringIO()))
    assert out.getvalue().startswith("2 catalog(s) written")
