"""Playwright in Debian's Chromium: a reviewer logs in, opens the prearchive and a session, views a DICOM
header and a thumbnail, relabels and archives the session (a real worker runs the job), and finds it on its
archive page. Screenshots go to test-output/."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveSession
from tests.archive.conftest import PROJECT_SCRIPT, build, read_all, send_study
from tests.conftest import screenshot
from xnatlite.models import ImageSession

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _orm_beside_playwright(monkeypatch):
    """Playwright's sync API runs an event loop in this thread; the ORM calls here are still synchronous."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_reviewer_reviews_relabels_and_archives(live_server, browser_page, celery_worker, project, member, site):
    project.anon_script, project.anon_script_enabled = PROJECT_SCRIPT, True
    project.save()
    study = send_study(project="PROJ1", subject="RAW_SUBJ", label="RAW_SESS", series=((1, "MR", 5), (2, "SC", 1)),
                       rows=32)
    session = PrearchiveSession.objects.get(tag=study)
    build(session.pk)
    page = browser_page

    page.goto(f"{live_server.url}/prearchive/")
    assert "/app/template/Login.vm" in page.url
    page.fill("#id_username", "mike")
    page.fill("#id_password", "mike-pass-1")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#sessions")
    assert page.locator("#sessions tbody tr").count() == 1
    assert "Ready to archive" in page.inner_text("#sessions")  # statuses in words (issue 15)
    assert page.locator("#sessions tr[data-status=READY]").count() == 1
    screenshot(page, "archive-01-prearchive-list")

    page.click("text=RAW_SESS")
    page.wait_for_selector("#scans")
    assert page.locator("#scans tbody tr").count() == 2
    assert "secondary capture" in page.inner_text("#phi-flags")  # the SC scan is flagged for burned-in PHI
    thumb = page.locator("tr[data-scan='1'] img.thumb")
    thumb.scroll_into_view_if_needed()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=thumb.element_handle())
    screenshot(page, "archive-02-session")
    small = thumb.evaluate("img => img.naturalWidth")
    with page.expect_popup() as opened:  # the thumbnail enlarges (issue 15 item 6)
        page.click("tr[data-scan='1'] a.snapshot-link")
    popup = opened.value
    popup.wait_for_load_state()
    big = popup.locator("img")
    popup.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=big.element_handle())
    assert big.evaluate("img => img.naturalWidth") >= 512 > small
    screenshot(popup, "archive-02b-enlarged")
    popup.close()

    page.click("tr[data-scan='1'] a.review-tags")
    page.wait_for_selector("#dicom-header")
    header = page.inner_text("#dicom-header")
    assert "(0020,000D)" in header and "Series Description" in header and "T1 MPRAGE" in header
    screenshot(page, "archive-03-dicom-header")
    page.go_back()

    page.click("#review-archive")
    page.wait_for_selector("#archive-form")
    page.fill("#id_subject", "SUBJ_07")
    page.fill("#id_label", "SUBJ_07_MR1")
    page.select_option("#id_overwrite", "none")
    screenshot(page, "archive-04-archive-form")
    page.click("#archive-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/archive/PROJ1/sessions/SUBJ_07_MR1/", timeout=60000)
    assert page.inner_text("#session-label") == "SUBJ_07_MR1"
    assert "SUBJ_07" in page.inner_text("#session-fields")
    assert page.locator("#archived-scans tbody tr").count() == 2
    screenshot(page, "archive-05-archived-session")

    record = ImageSession.objects.get(label="SUBJ_07_MR1")
    assert record.subject.label == "SUBJ_07"
    for ds in read_all("PROJ1", "SUBJ_07_MR1"):
        assert (str(ds.PatientName), ds.PatientID) == ("SUBJ_07", "SUBJ_07_MR1")
