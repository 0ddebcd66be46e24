"""The compressed uploader page in headless Chromium: project, a zip of two sessions, the progress bar
moving, the summary, and the link to a prearchive entry. Uploads are throttled (DevTools) so that the
progress bar has something to show."""
from __future__ import annotations

import zipfile

import pytest
from django.conf import settings
from django.test import Client

from prearchive.models import PrearchiveSession
from tests.conftest import screenshot
from tests.dicom_factory import write_session


@pytest.mark.e2e
@pytest.mark.slow
def test_uploader_page_end_to_end(live_server, celery_worker, member, browser_page, tmp_path, monkeypatch):
    # Playwright's sync API runs an event loop in this thread; the ORM calls here are plain and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    write_session(tmp_path / "z" / "one", series=2, per_series=3, rows=256, columns=256, PatientID="E2E1",
                  PatientName="One^Patient")
    write_session(tmp_path / "z" / "two", series=1, per_series=4, rows=256, columns=256, PatientID="E2E2",
                  PatientName="Two^Patient")
    archive = tmp_path / "two_sessions.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted((tmp_path / "z").rglob("*.dcm")):
            zf.write(f, f.relative_to(tmp_path / "z").as_posix())
        zf.writestr("notes.txt", "not DICOM")

    client = Client()
    client.force_login(member)
    page = browser_page
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": 5, "downloadThroughput": -1,
                                                   "uploadThroughput": 400 * 1024})
    page.goto(f"{live_server.url}/upload/")
    page.select_option("#project", "PROJ1")
    assert "prearchive" in page.inner_text("#destination")
    page.set_input_files("#file", str(archive))
    page.click("#upload-button")
    page.wait_for_function("window.uploadProgressLog.some(p => p > 0 && p < 100)", timeout=30000)
    screenshot(page, "upload-progress")
    page.wait_for_selector("#summary-card:not([hidden])", timeout=90000)
    screenshot(page, "upload-summary")
    log = page.evaluate("window.uploadProgressLog")
    assert log[-1] == 100 and len(set(log)) >= 3
    assert page.inner_text("#upload-bytes").endswith("(100%)")
    counts = page.inner_text("#summary-counts")
    assert "2 session(s): 2 created" in counts and "Files stored: 10" in counts and "Files skipped: 1" in counts
    assert "notes.txt: not a DICOM file" in page.inner_text("#summary-skipped")
    assert PrearchiveSession.objects.filter(project_id="PROJ1").count() == 2
    link = page.locator("a.session-link").first
    href = link.get_attribute("href")
    link.click()
    page.wait_for_url(f"**{href}")
    screenshot(page, "upload-prearchive-entry")
    assert page.locator("text=Page not found").count() == 0
    pk = int(href.strip("/").split("/")[-1])
    assert PrearchiveSession.objects.get(pk=pk).name in page.content()
