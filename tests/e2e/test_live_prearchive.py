"""The live prearchive in headless Chromium: a session sent over C-STORE (dcmtk's storescu against a real
``manage.py run_dicom_scp``, a real Celery worker building it) appears on an open prearchive page, shows
the files received, the last file time and when it will be built, and turns READY without a reload; the
session page does the same. Plus the plain words of statuses, conflicts with their resolutions, and what
archiving a receiving session says."""
from __future__ import annotations

import os
import subprocess
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from tests.conftest import screenshot, start_worker
from tests.dicom_factory import make_dataset, write_dataset
from tests.hardening.conftest import fast_site, free_port, receiver

S = PrearchiveSession.Status


def _sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])


def _study(folder, *, label: str, count: int) -> list[str]:
    study_uid = generate_uid()
    series_uid = generate_uid()
    return [str(write_dataset(make_dataset(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SeriesNumber=1,
                                           InstanceNumber=i + 1, SeriesDescription="T1",
                                           PatientComments=f"Project:PROJ1 Subject:{label} Session:{label}_MR"),
                              folder / f"{label}_{i}.dcm"))
            for i in range(count)]


def _storescu(port: int, files: list[str]) -> None:
    out = subprocess.run(["/usr/bin/storescu", "-v", "-aec", "XNATLITE", "127.0.0.1", str(port), *files],
                         env=dict(os.environ, TCP_NODELAY="1"), capture_output=True, text=True, timeout=60)
    assert out.stdout.count("Received Store Response (Success)") + out.stderr.count(
        "Received Store Response (Success)") == len(files), out.stderr[-2000:]


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_c_store_session_appears_and_turns_ready_without_a_reload(live_server, browser_page, service_env, member,
                                                                    tmp_path, settings):
    settings.PREARCHIVE_IDLE_UNIT_SECONDS = 1
    fast_site(idle=8, sweep_ms=1000)
    env = dict(service_env, PREARCHIVE_IDLE_UNIT_SECONDS="1")
    from tests.conftest import redis_flush

    redis_flush()
    port = free_port()
    procs = [receiver(env, tmp_path / "receiver.log", port), start_worker(env, tmp_path / "worker.log")]
    try:
        page = browser_page
        _sign_in(page, live_server, member)
        page.goto(live_server.url + "/prearchive/")
        page.evaluate("window.__notReloaded = true")
        assert page.locator("#sessions tr[data-session]").count() == 0

        _storescu(port, _study(tmp_path, label="LIVE1", count=3))
        row = "#sessions tr[data-session]"
        page.wait_for_selector(f"{row}[data-status='RECEIVING']", timeout=30000)
        page.wait_for_function("document.querySelector('#sessions tr[data-session] .c-files').textContent === '3'",
                               timeout=30000)
        assert page.inner_text(f"{row} .c-status") == "Receiving files"
        assert page.inner_text(f"{row} .c-build").startswith("at about ")
        assert page.inner_text(f"{row} .c-last")
        screenshot(page, "prearchive_live_receiving")
        page.wait_for_selector(f"{row}[data-status='READY']", timeout=60000)
        assert page.inner_text(f"{row} .c-status") == "Ready to archive"
        assert page.inner_text(f"{row} .c-files") == "3"
        assert page.evaluate("window.__notReloaded") is True
        screenshot(page, "prearchive_live_ready")

        # The session page of a second study, opened while it receives, turns ready on its own too.
        _storescu(port, _study(tmp_path, label="LIVE2", count=2))
        page.wait_for_selector("#sessions tr[data-status='RECEIVING'] a", timeout=30000)
        page.click("#sessions tr[data-status='RECEIVING'] a")
        page.wait_for_selector("#job-status[data-status='RECEIVING']")
        page.evaluate("window.__notReloaded = true")
        page.wait_for_function("document.getElementById('live-files').textContent === '2'", timeout=30000)
        assert page.inner_text("#live-build").startswith("at about ")
        page.wait_for_selector("#job-status[data-status='READY']", timeout=60000)
        assert page.inner_text("#job-status") == "Ready to archive"
        page.wait_for_selector("#scans tr[data-scan='1']", timeout=20000)
        assert page.evaluate("window.__notReloaded") is True
        screenshot(page, "prearchive_live_session_ready")
    finally:
        for proc in reversed(procs):
            proc.stop()


@pytest.mark.django_db
def test_statuses_in_words_conflicts_with_resolutions_and_archiving_a_receiving_session(client, site, member,
                                                                                         project):
    now = timezone.now()
    conflict = PrearchiveSession.objects.create(
        project=project, timestamp="20240101_000000000", folder_name="c1", name="S1_MR", subject="S1", tag="1.2.3",
        lastmod=now, uploaded=now, status=S.CONFLICT,
        error_message="CONFLICT-1: Session already exists, retry with overwrite enabled")
    receiving = PrearchiveSession.objects.create(
        project=project, timestamp="20240101_000000001", folder_name="r1", name="S2_MR", subject="S2", tag="1.2.4",
        lastmod=now - timedelta(seconds=30), uploaded=now, status=S.RECEIVING)
    client.force_login(member)
    page = client.get("/prearchive/").content.decode()
    assert "Conflict with the archive" in page and "Receiving files" in page and 'id="status-legend"' in page
    assert "QUEUED_ARCHIVING" in page and "Waiting to be archived" in page  # the legend names every status
    detail = client.get(f"/prearchive/{conflict.pk}/").content.decode()
    assert "A session with this label is already archived in the project." in detail
    for words, mode in (("Append to the archived session", "append"), ("Archive under a new label", "none"),
                        ("Overwrite the archived session", "delete")):
        assert words in detail and f"?overwrite={mode}" in detail
    form = client.get(f"/prearchive/{conflict.pk}/archive?overwrite=append").content.decode()
    assert '<option value="append" selected>' in form
    status = client.get(f"/prearchive/{conflict.pk}/status.json").json()
    assert status["status_text"] == "Conflict with the archive" and status["conflict"]["resolutions"][0][1] == "append"

    rows = {r["id"]: r for r in client.get("/prearchive/list.json").json()["sessions"]}
    assert rows[receiving.pk]["build_at"] and rows[receiving.pk]["status_text"] == "Receiving files"
    answer = client.post(f"/prearchive/{receiving.pk}/archive", {"project": "PROJ1", "subject": "S2",
                                                                 "label": "S2_MR", "overwrite": "none"}, follow=True)
    text = answer.content.decode()
    assert "still receiving files" in text and "Operation already in progress" not in text
    assert PrearchiveSession.objects.get(pk=receiving.pk).status == S.RECEIVING
