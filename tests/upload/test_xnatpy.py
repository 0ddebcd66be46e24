"""XNAT's own Python client (xnatpy) against xnatlite: connect, import a zip, find it in the prearchive."""
from __future__ import annotations

import pytest

from tests.upload.helpers import session_files, zip_of


@pytest.mark.slow
def test_xnatpy_connects_with_its_default_redirect_detection(live_server, transactional_db, member):
    """xnatpy GETs the server root anonymously and adopts where it is redirected (unless the target is
    under /app/ or /data/, as XNAT's login page is) as the server's base URL from then on."""
    import xnat

    with xnat.connect(live_server.url, user="mike", password="mike-pass-1") as session:
        assert session.get("/data/auth").text == "User 'mike' is logged in"


@pytest.mark.slow
def test_xnatpy_imports_a_zip_and_finds_it_in_the_prearchive(live_server, transactional_db, member, tmp_path):
    import xnat

    session_files(tmp_path / "a", series=2, per_series=2)
    first = zip_of(tmp_path / "a", tmp_path / "a.zip")
    session_files(tmp_path / "b", series=1, per_series=3)
    second = zip_of(tmp_path / "b", tmp_path / "b.zip")
    with xnat.connect(live_server.url, user="mike", password="mike-pass-1") as session:
        # As XNAT: a plain import leaves the session RECEIVING until the idle build...
        imported = session.services.import_(first, project="PROJ1", subject="XP01", experiment="XP01_MR1")
        assert imported.uri.startswith("/data/prearchive/projects/PROJ1/")
        listed = {s.label: s for s in session.prearchive.sessions(project="PROJ1", allow_receiving=True)}
        assert (listed["XP01_MR1"].subject, listed["XP01_MR1"].status) == ("XP01", "RECEIVING")
        # ...and a destination commits it at once (built, READY).
        built = session.services.import_(second, project="PROJ1", subject="XP02", experiment="XP02_MR1",
                                         destination="/prearchive")
        listed = {s.label: s for s in session.prearchive.sessions(project="PROJ1")}
        assert (listed["XP02_MR1"].subject, listed["XP02_MR1"].status) == ("XP02", "READY")
        assert "XP01_MR1" not in listed  # xnatpy hides RECEIVING sessions by default
        # xnatpy makes each listed session's URI as "/data" + the row's url (XNAT's url has no /data).
        assert listed["XP02_MR1"].uri == built.uri
