"""Playwright in Debian's Chromium (issue 15): a member opens an archived session with two scans, sees one
snapshot per scan, enlarges one, opens a montage and the DICOM header viewer, and downloads a scan's zip
(read back with zipfile + pydicom). Screenshots go to test-output/."""
from __future__ import annotations

import io
import zipfile

import pytest
from pydicom import dcmread

from tests.archive.conftest import ready_session
from tests.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

LOADED = "img => img.complete && img.naturalWidth > 0"


def _opened_image(popup):
    popup.wait_for_load_state()
    img = popup.locator("img")
    popup.wait_for_function(LOADED, arg=img.element_handle())
    return img.evaluate("img => [img.naturalWidth, img.naturalHeight]")


def test_archived_session_snapshots_montage_header_and_download(live_server, browser_page, project, member, site):
    from prearchive.services.archive import session_archive, session_archive_request

    pre = ready_session(project="PROJ1", subject="SUBJ1", label="PAGE1", series=((1, "MR", 5), (2, "CT", 3)),
                        rows=32)
    session_archive_request(session=pre, actor="admin")
    assert session_archive(session_id=pre.pk) == "archived"
    page = browser_page

    page.goto(f"{live_server.url}/archive/PROJ1/sessions/PAGE1/")
    page.fill("#id_username", "mike")
    page.fill("#id_password", "mike-pass-1")
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("#archived-scans")
    assert page.locator("#archived-scans tbody tr").count() == 2
    widths = {}
    for scan in ("1", "2"):
        img = page.locator(f"tr[data-scan='{scan}'] img.thumb")
        img.scroll_into_view_if_needed()
        page.wait_for_function(LOADED, arg=img.element_handle())
        widths[scan] = img.evaluate("img => img.naturalWidth")
    assert all(w > 0 for w in widths.values())
    screenshot(page, "archive-page-01-snapshots")

    with page.expect_popup() as opened:
        page.click("tr[data-scan='1'] a.snapshot-link")
    popup = opened.value
    width, _height = _opened_image(popup)
    assert width > widths["1"]  # the enlarged image is larger than the one in the table
    screenshot(popup, "archive-page-02-enlarged")
    popup.close()

    with page.expect_popup() as opened:
        page.click("tr[data-scan='1'] a.montage-link")
    popup = opened.value
    assert _opened_image(popup) == [4 * 128, 2 * 128]  # five images: a grid of four columns, two rows
    screenshot(popup, "archive-page-03-montage")
    popup.close()

    page.click("tr[data-scan='2'] a.header-link")
    page.wait_for_selector("#dicom-header")
    header = page.inner_text("#dicom-header")
    assert "(0008,0060)" in header and "Modality" in header and "CT" in header
    screenshot(page, "archive-page-04-header")
    page.go_back()
    page.wait_for_selector("#archived-scans")

    with page.expect_download() as info:
        page.click("tr[data-scan='1'] a.scan-download")
    with open(info.value.path(), "rb") as fh:
        archive = zipfile.ZipFile(io.BytesIO(fh.read()))
    names = sorted(archive.namelist())
    assert len(names) == 5 and all(n.startswith("PAGE1/SCANS/1/DICOM/") for n in names), names
    for name in names:
        ds = dcmread(io.BytesIO(archive.read(name)))
        assert ds.Modality == "MR" and int(ds.SeriesNumber) == 1
