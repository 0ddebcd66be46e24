"""The README's run command, as a user runs it: start it, log in with what it prints, see every seed
setting with XNAT's default on the settings page, change one setting."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SEED_SETTINGS = [
    ("Hide Compressed Uploader", "id_ui_hide_compressed_uploader_upload_option", False),
    ("Hide XNAT Upload Assistant", "id_ui_hide_xnat_upload_assistant_download", True),
    ("Received File User", "id_received_file_user", "admin"),
    ("Session Idle Check Interval (ms)", "id_session_xml_rebuilder_repeat", "60000"),
    ("Session Idle Time (min)", "id_session_xml_rebuilder_interval", "5"),
    ("Reload Prearchive Database On Start-up?", "id_reload_prearc_database_on_startup", False),
    ("Enable Site-wide Anonymization Script?", "id_enable_sitewide_anonymization_script", True),
    ("Edit Anonymization Script", "id_sitewide_anonymization_script", 'version "6.1"'),
    ("Enable Site-wide Series Import Filter?", "id_enable_sitewide_series_import_filter", False),
    ("Filter Mode", "id_sitewide_series_import_filter_mode", "blacklist"),
    ("Edit Series Import Filter", "id_sitewide_series_import_filter", ""),
    ("Pet Tracers (Site Wide)", "id_sitewide_pet_tracers", "PIB\nFDG"),
    ("Separate PET-MR (Site Wide)", "id_sitewide_pet_mr", ""),
]
GROUP_TITLES = ["Available Upload Methods", "Session Builder", "Site-wide Anonymization Script",
                "Site-wide Series Import Filter", "Site-wide PET Tracers", "Site-wide Handling of PET-MR Sessions"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def running_xnatlite(tmp_path):
    """scripts/run on the embedded default: no DATABASE_URL, no broker URL, its own var/ folder."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "CELERY_BROKER_URL", "PREARCHIVE_ROOT", "ARCHIVE_ROOT",
                        "UPLOAD_TMP_ROOT", "SECRET_KEY", "DJANGO_SETTINGS_MODULE")}
    env.update(XNATLITE_VAR_DIR=str(tmp_path / "var"), XNATLITE_PORT=str(_free_port()),
               DICOM_PORT=str(_free_port()))
    log = tmp_path / "run.out"
    with open(log, "wb") as out:
        proc = subprocess.Popen(["bash", str(ROOT / "scripts" / "run")], env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while "Press Ctrl-C" not in log.read_text(errors="replace"):
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        yield log.read_text(), tmp_path / "var"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def test_run_command_serves_admin_with_every_seed_setting(running_xnatlite, browser_page):
    output, var = running_xnatlite
    url = re.search(r"admin: (http://127\.0\.0\.1:\d+/admin/)", output).group(1)
    password = re.search(r"user admin, password (\S+)", output).group(1)
    assert "Worker:" in output and "Beat:" in output and "DICOM receiver" in output
    assert (var / "xnatlite.sqlite3").exists()

    page = browser_page
    page.goto(url)
    page.fill("#id_username", "admin")
    page.fill("#id_password", password)
    page.click("input[type=submit]")
    page.get_by_role("link", name="Session Upload, Import & Anonymization").first.click()
    page.wait_for_selector("#id_received_file_user")
    assert "Session Upload, Import & Anonymization" in page.title()
    body = page.inner_text("body")
    for title in GROUP_TITLES:
        assert title in body
    for label, field_id, default in SEED_SETTINGS:
        assert label in body, label
        element = page.locator(f"#{field_id}")
        if isinstance(default, bool):
            assert element.is_checked() is default, label
        elif field_id.endswith("_script"):
            assert default in element.input_value()
        else:
            assert element.input_value() == default, label
    # Each setting carries the seed's help text.
    assert "defaults to 60,000 ms or one minute" in body
    assert "will also match \"Sag Localizer\"" in body or "Sag Localizer" in body
    screenshot(page, "admin-site-settings")

    # One change through the page, read back from the page.
    page.fill("#id_session_xml_rebuilder_interval", "2")
    page.click("input[name=_continue]")
    page.wait_for_selector(".messagelist .success, ul.messagelist li")
    assert page.locator("#id_session_xml_rebuilder_interval").input_value() == "2"
    # A bad value is refused with the reason and the old value stays.
    page.fill("#id_session_xml_rebuilder_repeat", "0")
    page.click("input[name=_continue]")
    page.wait_for_selector(".errorlist")  # the answer page, not the one being left (its body reads empty)
    assert "greater than or equal to 1" in page.inner_text("body")
    screenshot(page, "admin-site-settings-error")
