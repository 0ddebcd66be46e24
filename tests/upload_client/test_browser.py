"""The uploader client in headless Chromium against the live server, with a real Celery worker."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pydicom
import pytest

from prearchive.models import PrearchiveFile, PrearchiveSession
from tests.conftest import screenshot
from upload.client.models import Transfer
from xnatlite.models import AuditEvent, Project, Subject

from .helpers import PROJECT_SCRIPT, pixel_values, session_files, zip_of

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.django_db(transaction=True)]
SEED_SCHEME = 'makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]'


@pytest.fixture
def signed_in(monkeypatch, live_server, member, request):
    from django.test import Client

    # Playwright's sync API runs an event loop in this thread; the ORM calls of the test are still
    # synchronous, one at a time.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    browser_page = request.getfixturevalue("browser_page")

    client = Client()
    client.force_login(member)
    browser_page.context.add_cookies([{"name": "JSESSIONID", "value": client.cookies["JSESSIONID"].value,
                                       "url": live_server.url}])
    return browser_page


def upload(page, live_server, archive: Path) -> None:
    page.goto(live_server.url + "/upload/client/")
    page.select_option("#uc-project", "PROJ1")
    page.set_input_files("#uc-file", str(archive))
    page.click("#uc-upload")
    page.wait_for_url("**/upload/client/t/*/")
    page.wait_for_selector("#uc-review:not([hidden])", timeout=30000)


def wait_done(page) -> None:
    page.wait_for_selector("#uc-result:not([hidden]) .uc-done-session", timeout=60000)


def test_single_session_created_subject_variable_scan_left_out_and_pixels(signed_in, live_server, tmp_path,
                                                                          celery_worker, settings):
    from django.utils import timezone

    page = signed_in
    Project.objects.filter(pk="PROJ1").update(anon_script=PROJECT_SCRIPT, anon_script_enabled=True,
                                              default_session_labeling_scheme=SEED_SCHEME)
    now = timezone.now()
    PrearchiveSession.objects.create(project_id="PROJ1", timestamp="20240101_000000000", folder_name="old",
                                     name="NEW01_v00_mr", tag="1.2.3", lastmod=now, uploaded=now,
                                     status=PrearchiveSession.Status.READY)
    archive = zip_of(session_files(tmp_path / "src"), tmp_path / "one.zip")
    upload(page, live_server, archive)
    assert "Doe" not in page.content() and "PID0001" not in page.content()
    page.select_option("#uc-subject", "__new__")
    page.fill("#uc-new-subject", "NEW01")
    page.dispatch_event("#uc-new-subject", "change")
    page.wait_for_function("document.getElementById('uc-label').value === 'NEW01_v01_mr'")
    page.fill("#uc-var-trial", "TRIAL-42")
    page.uncheck("#uc-scans tr[data-scan='2'] .uc-scan")
    page.click("#uc-scans tr[data-scan='1'] .uc-pixels")
    page.wait_for_selector("#uc-canvas[data-ready='1']")
    box = page.locator("#uc-canvas").bounding_box()
    scale = box["width"] / 32
    page.mouse.move(box["x"] + 2 * scale + 1, box["y"] + 3 * scale + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + 6 * scale, box["y"] + 6 * scale)
    page.mouse.move(box["x"] + 10 * scale + 1, box["y"] + 8 * scale + 1)
    page.mouse.up()
    assert page.inner_text("#uc-rects") .startswith("left 2, top 3, right 10, bottom 8")
    screenshot(page, "upload_client_single_pixels")
    page.click("#uc-editor-done")
    assert "1 rectangle(s)" in page.inner_text("#uc-scans tr[data-scan='1']")
    screenshot(page, "upload_client_single_review")
    page.click("#uc-confirm")
    wait_done(page)
    screenshot(page, "upload_client_single_done")

    assert Subject.objects.filter(project_id="PROJ1", label="NEW01").exists()
    session = PrearchiveSession.objects.get(name="NEW01_v01_mr")
    assert session.subject == "NEW01"
    rows = list(PrearchiveFile.objects.filter(session=session))
    assert len(rows) == 2 and {r.scan_id for r in rows} == {"1"}  # scan 2 left out
    assert not (Path(settings.PREARCHIVE_ROOT) / session.relative_dir / "SCANS" / "2").exists()
    for row in rows:
        ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / session.relative_dir / row.relative_path)
        assert ds.StudyDescription == "TRIAL-42"  # the describe variable reached the stored file
        assert ds.BurnedInAnnotation == "NO"
        pixels = ds.pixel_array
        inside = pixels != pixels
        inside[3:8, 2:10] = True
        assert (pixels[inside] == 0).all()
        assert (pixels[~inside] == pixel_values(32, int(ds.InstanceNumber))[~inside]).all()
    assert AuditEvent.objects.filter(action="upload_client_pixel_template", session_label="NEW01_v01_mr").exists()
    page.goto(live_server.url + "/upload/client/transfers/")
    page.wait_for_selector("tr.uc-transfer .uc-status")
    assert "Done" in page.inner_text("#uc-transfers")
    screenshot(page, "upload_client_transfers")


def test_bulk_csv_round_trip_relabels_two_and_drops_a_third(signed_in, live_server, tmp_path, celery_worker,
                                                             settings):
    page = signed_in
    paths = []
    for n in range(3):
        paths += session_files(tmp_path / f"src{n}", study_date=f"2024020{n + 1}",
                               series=((1, f"Series {n}", 1),))
    upload(page, live_server, zip_of(paths, tmp_path / "three.zip"))
    page.wait_for_selector("#uc-bulk tbody tr[data-key='s3']")
    assert page.locator("#uc-bulk tbody tr").count() == 3
    with page.expect_download() as info:
        page.click("#uc-csv-download")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert [r["Upload ID"] for r in rows] == ["s1", "s2", "s3"]

    def write(rows, name):
        out = tmp_path / name
        with open(out, "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        return out

    bad = [dict(r) for r in rows]
    bad[0]["Modalities"] = "CT"
    page.set_input_files("#uc-csv-file", str(write(bad, "bad.csv")))
    page.wait_for_selector("#uc-csv-message.text-danger")
    assert "Row 2: the column 'Modalities' was changed" in page.inner_text("#uc-csv-message")
    screenshot(page, "upload_client_bulk_csv_refused")
    rows[0].update({"XNAT Subject ID": "BULK01", "Session Label": "BULK01_MR_A"})
    rows[1].update({"XNAT Subject ID": "BULK02", "Session Label": "BULK02_MR_B"})
    page.set_input_files("#uc-csv-file", str(write(rows[:2], "good.csv")))
    page.wait_for_function("document.getElementById('uc-csv-message').textContent.indexOf('2 session') >= 0")
    assert page.locator("#uc-bulk tbody tr").count() == 2
    assert page.input_value("#uc-bulk tr[data-key='s1'] .uc-b-label") == "BULK01_MR_A"
    assert page.locator(".uc-group").count() == 1  # all MR 32x32: one pixel template group
    page.click(".uc-group-pixels")
    page.wait_for_selector("#uc-canvas[data-ready='1']")
    box = page.locator("#uc-canvas").bounding_box()
    scale = box["width"] / 32
    page.mouse.move(box["x"] + 1, box["y"] + 1)
    page.mouse.down()
    page.mouse.move(box["x"] + 16 * scale + 1, box["y"] + 4 * scale + 1)
    page.mouse.up()
    page.click("#uc-editor-done")
    assert "1 rectangle(s)" in page.inner_text(".uc-group")
    screenshot(page, "upload_client_bulk_review")
    page.click("#uc-confirm")
    wait_done(page)
    screenshot(page, "upload_client_bulk_done")
    labels = sorted(PrearchiveSession.objects.values_list("name", "subject"))
    assert labels == [("BULK01_MR_A", "BULK01"), ("BULK02_MR_B", "BULK02")]
    assert PrearchiveFile.objects.count() == 2
    for row in PrearchiveFile.objects.select_related("session"):  # the group's template covered both
        ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / row.session.relative_dir / row.relative_path)
        inside = ds.pixel_array != ds.pixel_array
        inside[0:4, 0:16] = True
        assert (ds.pixel_array[inside] == 0).all() and (ds.pixel_array[~inside] != 0).all()
        assert ds.BurnedInAnnotation == "NO"


def test_wrong_visit_date_is_corrected_on_the_same_transfer(signed_in, live_server, tmp_path, celery_worker,
                                                              settings):
    page = signed_in
    Project.objects.filter(pk="PROJ1").update(require_date=True)
    upload(page, live_server, zip_of(session_files(tmp_path / "src"), tmp_path / "d.zip"))
    assert "2024-01-15" not in page.inner_text("#uc-review")  # the date to verify is not shown
    transfer = Transfer.objects.get()
    page.select_option("#uc-subject", "__new__")
    page.fill("#uc-new-subject", "D01")
    page.fill("#uc-label", "D01_MR")
    page.fill("#uc-visit-date", "2024-01-16")
    page.click("#uc-confirm")
    page.wait_for_selector("#uc-error:not([hidden])")
    assert "does not match" in page.inner_text("#uc-error")
    assert page.get_attribute("#uc-visit-date", "aria-invalid") == "true"
    screenshot(page, "upload_client_date_wrong")
    assert Transfer.objects.get().status == Transfer.Status.AWAITING  # kept: files, labels, rectangles
    assert page.input_value("#uc-label") == "D01_MR"
    page.fill("#uc-visit-date", "2024-01-15")
    page.click("#uc-confirm")
    wait_done(page)
    assert Transfer.objects.get().pk == transfer.pk
    assert list(PrearchiveSession.objects.values_list("name", flat=True)) == ["D01_MR"]
    assert AuditEvent.objects.filter(action="upload_client_date_refused").count() == 1


def test_in_a_bulk_of_three_only_the_wrong_row_is_marked(signed_in, live_server, tmp_path, celery_worker):
    page = signed_in
    Project.objects.filter(pk="PROJ1").update(require_date=True)
    files = []
    for n, day in enumerate(("20240110", "20240211", "20240312"), 1):
        files += session_files(tmp_path / f"src{n}", study_date=day, series=((1, "T1", 1),), PatientID=f"B{n}")
    upload(page, live_server, zip_of(files, tmp_path / "bulk3.zip"))
    sessions = Transfer.objects.get().inspection["sessions"]
    assert len(sessions) == 3
    dates = {s["key"]: s["study_date"] for s in sessions}
    wrong_key = sessions[1]["key"]
    for key, date in dates.items():
        row = f"#uc-bulk tbody tr[data-key='{key}']"
        page.fill(f"{row} .uc-b-subject", f"SUB{key}")
        page.dispatch_event(f"{row} .uc-b-subject", "change")
        page.fill(f"{row} .uc-b-label", f"SESS{key}")
        page.fill(f"{row} .uc-b-date", "2023-12-31" if key == wrong_key else date)
    page.click("#uc-confirm")
    page.wait_for_selector("tr.uc-wrong-date")
    marked = page.eval_on_selector_all("#uc-bulk tbody tr.uc-wrong-date", "rows => rows.map(r => r.dataset.key)")
    assert marked == [wrong_key]
    assert "1 of the sessions" in page.inner_text("#uc-error")
    screenshot(page, "upload_client_bulk_wrong_date")
    assert Transfer.objects.get().status == Transfer.Status.AWAITING
    for key in dates:  # labels typed survive; only the wrong date is retyped
        page.fill(f"#uc-bulk tbody tr[data-key='{key}'] .uc-b-label", f"SESS{key}")
    page.fill(f"#uc-bulk tbody tr[data-key='{wrong_key}'] .uc-b-date", dates[wrong_key])
    page.click("#uc-confirm")
    wait_done(page)
    assert sorted(PrearchiveSession.objects.values_list("name", flat=True)) == sorted(f"SESS{k}" for k in dates)


def test_pixel_editor_is_a_keyboard_dialog(signed_in, live_server, tmp_path, celery_worker, settings):
    """Rectangles typed in, focus kept inside the dialog, Escape and Cancel discard, Done keeps; the typed
    rectangle is blanked in the stored files."""
    page = signed_in
    upload(page, live_server, zip_of(session_files(tmp_path / "src", series=((1, "T1", 2),)), tmp_path / "k.zip"))
    page.select_option("#uc-subject", "__new__")
    page.fill("#uc-new-subject", "KEY01")
    page.fill("#uc-label", "KEY01_MR")
    opener = "#uc-scans tr[data-scan='1'] .uc-pixels"
    page.focus(opener)
    page.keyboard.press("Enter")
    page.wait_for_selector("#uc-canvas[data-ready='1']")
    assert page.get_attribute("#uc-editor [role=dialog]", "aria-modal") == "true"
    assert page.evaluate("document.activeElement.id") == "uc-rect-left"
    # The frame to draw on (issue 15 item 8): a labelled slider over the scan's 2 frames, keyboard driven.
    assert page.get_attribute("#uc-frame", "max") == "2" and page.is_visible("#uc-frame")
    assert page.locator("label[for=uc-frame]").inner_text() == "Frame"
    assert page.get_attribute("#uc-canvas", "data-src").endswith(".png?frame=1")
    page.focus("#uc-frame")
    with page.expect_response(lambda r: r.url.endswith(".png?frame=2") and r.status == 200):
        page.keyboard.press("ArrowRight")
    page.wait_for_selector("#uc-canvas[data-ready='1']")
    assert page.inner_text("#uc-frame-text") == "Frame 2 of 2"
    bad = page.request.get(live_server.url + page.get_attribute("#uc-canvas", "data-src").replace("frame=2", "frame=3"))
    assert bad.status == 400 and "2 frame" in bad.json()["error"]
    page.focus("#uc-rect-left")
    for _ in range(15):  # Tab never leaves the dialog
        page.keyboard.press("Tab")
        assert page.evaluate("!!document.activeElement.closest('#uc-editor')")
    page.focus("#uc-rect-left")
    for value in ("2", "3", "10", "8"):
        page.keyboard.type(value)
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # on "Add rectangle"
    assert page.inner_text("#uc-rects").startswith("left 2, top 3, right 10, bottom 8")
    page.fill("#uc-rect-left", "20")
    page.fill("#uc-rect-top", "0")
    page.fill("#uc-rect-right", "5")
    page.fill("#uc-rect-bottom", "99")
    page.click("#uc-rect-add")
    assert "left < right" in page.inner_text("#uc-rect-error")
    page.keyboard.press("Escape")  # discards
    assert page.is_hidden("#uc-editor")
    assert page.evaluate("document.activeElement.matches(\"#uc-scans tr[data-scan='1'] .uc-pixels\")")
    assert page.inner_text("#uc-scans tr[data-scan='1'] .uc-rect-count") == ""
    page.keyboard.press("Enter")
    page.wait_for_selector("#uc-editor:not([hidden])")
    assert page.inner_text("#uc-rects") == ""
    for key, value in (("left", "2"), ("top", "3"), ("right", "10"), ("bottom", "8")):
        page.fill(f"#uc-rect-{key}", value)
    page.press("#uc-rect-bottom", "Enter")
    page.click("#uc-editor-cancel")
    assert page.inner_text("#uc-scans tr[data-scan='1'] .uc-rect-count") == ""
    page.keyboard.press("Enter")
    page.wait_for_selector("#uc-editor:not([hidden])")
    for key, value in (("left", "2"), ("top", "3"), ("right", "10"), ("bottom", "8")):
        page.fill(f"#uc-rect-{key}", value)
    page.press("#uc-rect-bottom", "Enter")
    screenshot(page, "upload_client_pixel_dialog")
    page.click("#uc-editor-done")
    assert "1 rectangle(s)" in page.inner_text("#uc-scans tr[data-scan='1'] .uc-rect-count")
    page.click("#uc-confirm")
    wait_done(page)
    for row in PrearchiveFile.objects.select_related("session"):
        ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / row.session.relative_dir / row.relative_path)
        inside = ds.pixel_array != ds.pixel_array
        inside[3:8, 2:10] = True
        assert (ds.pixel_array[inside] == 0).all() and (ds.pixel_array[~inside] != 0).all()


def test_bulk_rows_tell_patients_apart_count_visits_per_subject_and_show_filtered_series(
        signed_in, live_server, tmp_path, celery_worker):
    """Issue 15 item 3: each bulk row shows the uploader's own patient name and ID, folder, study date and
    description and series count; no label is numbered before a subject is typed, then visits count per
    subject; the series the project's filter drops say "will be filtered", cannot be chosen, and the finished
    upload says how many files were filtered."""
    page = signed_in
    Project.objects.filter(pk="PROJ1").update(default_session_labeling_scheme=SEED_SCHEME,
                                              series_import_filter_enabled=True,
                                              series_import_filter_mode="blacklist",
                                              series_import_filter="LOCALIZER")
    files = []
    for n, (name, pid) in enumerate((("Doe^Jane", "P-1"), ("Roe^Rick", "P-2"), ("Poe^Edgar", "P-3")), 1):
        series = ((1, "T1", 1), (2, "LOCALIZER", 2)) if n == 2 else ((1, "T1", 1),)
        files += session_files(tmp_path / f"patient{n}", study_date=f"2024030{n}", series=series, PatientName=name,
                               PatientID=pid, StudyDescription=f"Brain {n}")
    files += session_files(tmp_path / "patient4", series=((9, "LOCALIZER", 1),), PatientID="P-4")  # all filtered
    upload(page, live_server, zip_of(files, tmp_path / "four.zip"))
    rows = {k: f"#uc-bulk tbody tr[data-key='s{n}']" for n, k in enumerate(("P-1", "P-2", "P-3"), 1)}
    only_filtered = "#uc-bulk tbody tr[data-key='s4'] .uc-include"
    assert page.is_disabled(only_filtered) and not page.is_checked(only_filtered)  # cannot be selected
    assert "all will be filtered" in page.inner_text("#uc-bulk tbody tr[data-key='s4']")
    text = page.inner_text(rows["P-2"])
    for expected in ("Roe Rick", "P-2", "data/patient2", "2024-03-02", "Brain 2", "will be filtered"):
        assert expected in text, expected
    assert page.inner_text(f"{rows['P-2']} .uc-series").startswith("2")
    assert "LOCALIZER" in page.inner_text(f"{rows['P-2']} .uc-filtered-series")
    assert "Doe Jane" in page.inner_text(rows["P-1"]) and "will be filtered" not in page.inner_text(rows["P-1"])
    assert [page.input_value(f"{r} .uc-b-label") for r in rows.values()] == ["", "", ""]  # not _v00_mr, _v01_mr...
    assert page.locator(".uc-group").count() == 1  # the filtered series has no pixel template group of its own
    for key, subject in (("P-2", "SUBA"), ("P-1", "SUBA"), ("P-3", "SUBB")):
        label = page.locator(f"{rows[key]} .uc-b-label")
        page.fill(f"{rows[key]} .uc-b-subject", subject)
        page.dispatch_event(f"{rows[key]} .uc-b-subject", "change")
        page.wait_for_function("el => el.value !== ''", arg=label.element_handle())
    assert [page.input_value(f"{r} .uc-b-label") for r in rows.values()] == ["SUBA_v01_mr", "SUBA_v00_mr",
                                                                             "SUBB_v00_mr"]
    screenshot(page, "upload_client_bulk_identifiable_rows")
    page.click("#uc-confirm")
    wait_done(page)
    assert "2 filtered" in page.inner_text("#uc-detail") and "2 filtered" in page.inner_text("#uc-result")
    screenshot(page, "upload_client_bulk_filtered_done")
    assert sorted(PrearchiveSession.objects.values_list("name", flat=True)) == ["SUBA_v00_mr", "SUBA_v01_mr",
                                                                                "SUBB_v00_mr"]
    assert set(PrearchiveFile.objects.values_list("scan_id", flat=True)) == {"1"}
    assert not AuditEvent.objects.filter(details__icontains="Roe").exists()
    page.goto(live_server.url + "/upload/client/transfers/")
    page.wait_for_selector("tr.uc-transfer .uc-status")
    assert "2 filtered" in page.inner_text("#uc-transfers")


def test_a_folder_is_picked_packed_and_inspected_like_an_archive(signed_in, live_server, tmp_path, celery_worker):
    """Issue 15 item 5: a folder (with subfolders and a file that is not DICOM) picked with the folder input
    is packed by the browser and goes through the archive route's own services: its sessions, with their
    folders, are on the review page and nothing is imported yet."""
    page = signed_in
    top = tmp_path / "Study_folder"
    for n, pid in enumerate(("F-1", "F-2"), 1):
        session_files(top / f"patient{n}" / "series", series=((1, "T1", 2),), PatientID=pid,
                      PatientName=f"Folder^Pat{n}")
    (top / "notes.txt").write_text("not DICOM")
    page.goto(live_server.url + "/upload/client/")
    page.select_option("#uc-project", "PROJ1")
    page.check("#uc-kind-folder")
    assert page.is_hidden("#uc-file-box") and page.get_attribute("#uc-folder", "webkitdirectory") is not None
    page.set_input_files("#uc-folder", str(top))
    screenshot(page, "upload_client_folder_picked")
    page.click("#uc-upload")
    page.wait_for_url("**/upload/client/t/*/")
    page.wait_for_selector("#uc-bulk tbody tr[data-key='s2']", timeout=30000)
    transfer = Transfer.objects.get()
    assert transfer.file_name == "Study_folder.zip" and transfer.status == Transfer.Status.AWAITING
    assert transfer.inspection["skipped_total"] == 1  # notes.txt
    assert [s["files"] for s in transfer.inspection["sessions"]] == [2, 2]
    folders = page.eval_on_selector_all("#uc-bulk td.uc-folder", "cells => cells.map(c => c.textContent)")
    assert sorted(folders) == ["Study_folder/patient1/series", "Study_folder/patient2/series"]  # any order
    assert "Folder Pat2" in page.inner_text("#uc-bulk")
    screenshot(page, "upload_client_folder_review")
    assert PrearchiveSession.objects.count() == 0
