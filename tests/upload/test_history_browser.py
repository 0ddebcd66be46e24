"""One upload history for every way in (issue 15 item 5), in Debian's Chromium: a compressed-uploader job,
an "Upload sessions" transfer, a REST import and (for the site admin only) C-STORE receipt, each with its
stored / filtered / refused counts and links to its sessions. Screenshots go to test-output/."""
from __future__ import annotations

import io
from unittest import mock

import pytest
from django.test import Client

from prearchive.models import IntakeRejection, PrearchiveSession
from prearchive.services.intake import dicom_file_receive
from tests.conftest import screenshot
from tests.dicom_factory import make_dataset, write_dataset
from tests.upload.helpers import MEMBER, basic, session_files, zip_of
from upload import services as upload_services
from upload.client import importer
from upload.client import services as client_services
from xnatlite.models import Project

pytestmark = pytest.mark.django_db(transaction=True)


def _sign_in(page, live_server, user) -> None:
    from django.conf import settings

    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])


def test_one_history_for_every_way_in(live_server, browser_page, monkeypatch, site, member, admin_user, tmp_path):
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    Project.objects.filter(pk="PROJ1").update(series_import_filter_enabled=True,
                                              series_import_filter_mode="blacklist",
                                              series_import_filter="LOCALIZER")
    # 1. The compressed uploader: two series of two, one of them a localizer the filter drops.
    session_files(tmp_path / "job" / "a", series=2, per_series=2, PatientID="JOBP")
    from pydicom import dcmread

    for path in (tmp_path / "job" / "a").rglob("*.dcm"):
        ds = dcmread(path)
        if int(ds.SeriesNumber) == 2:
            ds.SeriesDescription = "LOCALIZER"
            ds.save_as(path)
    archive = zip_of(tmp_path / "job", tmp_path / "job.zip")
    with mock.patch("upload.tasks.upload_job_run.delay"):
        job = upload_services.upload_job_create(user=member, params={"PROJECT_ID": "PROJ1", "SUBJECT_ID": "J1",
                                                                      "EXPT_LABEL": "J1_MR"},
                                                file_name="job.zip", stream=io.BytesIO(archive.read_bytes()),
                                                length=archive.stat().st_size)
    assert upload_services.upload_job_run(job_id=job.pk) == "DONE"
    # 2. "Upload sessions": a transfer inspected, confirmed and imported.
    session_files(tmp_path / "tr" / "a", series=1, per_series=3, PatientID="TRP")
    archive = zip_of(tmp_path / "tr", tmp_path / "tr.zip")
    with mock.patch("upload.client.services._enqueue"):
        transfer = client_services.transfer_create(user=member, project_id="PROJ1", file_name="tr.zip", size=0)
        client_services.transfer_receive(transfer=transfer, stream=io.BytesIO(archive.read_bytes()), length=None)
        client_services.transfer_inspect(transfer_id=transfer.pk)
        transfer.refresh_from_db()
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [
            {"key": "s1", "subject": "T1", "label": "T1_MR"}]})
    assert importer.transfer_import(transfer_id=transfer.pk) == "DONE"
    # 3. A REST import.
    session_files(tmp_path / "rest" / "a", series=1, per_series=2, PatientID="RESTP")
    r = Client().post("/data/services/import?PROJECT_ID=PROJ1&SUBJECT_ID=R1&EXPT_LABEL=R1_MR",
                      zip_of(tmp_path / "rest", tmp_path / "rest.zip").read_bytes(), content_type="application/zip",
                      **basic(*MEMBER))
    assert r.status_code == 200, r.content
    # 4. C-STORE receipt (the receiver's route into intake), and a file it refused without a session.
    study = None
    for i in range(2):
        ds = make_dataset(PatientComments="Project: PROJ1", PatientName="Doe^John", PatientID="CSTORE_A",
                          **({"StudyInstanceUID": study} if study else {}))
        study = ds.StudyInstanceUID
        dicom_file_receive(path=write_dataset(ds, tmp_path / "scp" / f"{i}.dcm"), source="dicom",
                           calling_aet="SCANNER", called_aet="XNATLITE")
    IntakeRejection.objects.create(source="dicom", reason_code=IntakeRejection.Reason.NOT_DICOM, reason="not DICOM")
    cstore = PrearchiveSession.objects.get(tag=study)

    page = browser_page
    _sign_in(page, live_server, admin_user)
    page.goto(live_server.url + "/prearchive/")
    page.click("header a[href='/upload/history/']")  # in the navigation
    page.wait_for_selector("#upload-history")
    screenshot(page, "upload_history_admin")

    def row(kind):
        loc = page.locator(f"tr.history-row[data-kind='{kind}']").first
        return [loc.locator(c).inner_text() for c in (".h-stored", ".h-filtered", ".h-refused")], loc

    counts, job_row = row("Compressed uploader")
    assert counts == ["2", "2", "0"] and "J1_MR" in job_row.inner_text() and "mike" in job_row.inner_text()
    counts, transfer_row = row("Upload sessions")
    assert counts == ["3", "0", "0"] and "T1_MR" in transfer_row.inner_text()
    counts, rest_row = row("REST import")
    assert counts == ["2", "0", "0"] and "R1_MR" in rest_row.inner_text()
    counts, cstore_row = page.locator(f"tr.history-row[data-kind='DICOM C-STORE']:has-text('{cstore.name}')"), None
    assert "from SCANNER" in counts.inner_text()
    assert [counts.locator(c).inner_text() for c in (".h-stored", ".h-filtered", ".h-refused")] == ["2", "0", "0"]
    assert page.locator("tr.history-row:has-text('Refused at receipt') .h-refused").inner_text() == "1"
    assert "Doe" not in page.inner_text("#upload-history")
    rest_row.locator("a.h-session").click()  # the link opens the session
    page.wait_for_selector("#scans")
    assert "R1_MR" in page.inner_text("main")

    # A member sees their own uploads and imports, not C-STORE receipt.
    page.context.clear_cookies()
    _sign_in(page, live_server, member)
    page.goto(live_server.url + "/upload/history/")
    kinds = page.eval_on_selector_all("tr.history-row", "rows => rows.map(r => r.dataset.kind)")
    assert sorted(kinds) == ["Compressed uploader", "REST import", "Upload sessions"]
    screenshot(page, "upload_history_member")
