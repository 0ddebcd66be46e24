"""Issue 14 item 9: each site setting on the settings page does what its help says (or has left the page)."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from django.conf import settings
from pydicom import dcmread

from prearchive.models import PrearchiveSession
from tests.archive.conftest import archived_files, build, client_for, send_study
from xnatlite.models import SiteConfig

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status


def test_rerun_project_anon_on_rename_is_off_by_default_as_xnat(db):
    SiteConfig.objects.all().delete()
    from xnatlite.selectors import site_config_get

    assert site_config_get().rerun_project_anon_on_rename is False


def test_hiding_the_compressed_uploader_removes_its_nav_link(member, site):
    client = client_for(member)
    page = client.get("/prearchive/").content.decode()
    assert 'href="/upload/"' in page
    site.ui_hide_compressed_uploader_upload_option = True
    site.save()
    page = client.get("/prearchive/").content.decode()
    assert 'href="/upload/"' not in page and 'href="/upload/client/"' in page


# ------------------------------------------------------------------ dicomEditAllowGetUrl


@pytest.fixture
def url_server(monkeypatch):
    """A real HTTP server on loopback answering every GET with one line of text."""
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            hits.append(self.path)
            body = b"FROM-URL"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/value", hits
    server.shutdown()
    server.server_close()


def _archive(session):
    from prearchive.services.archive import session_archive, session_archive_request

    session_archive_request(session=session, actor="mike")
    return session_archive(session_id=session.pk)


def test_get_url_in_the_project_script_runs_only_when_the_site_allows_it(project, site, url_server):
    url, hits = url_server
    project.anon_script = f'version "6.1"\n(0008,1030) := getURL["{url}"]\n'
    project.anon_script_enabled = True
    project.save()
    study = send_study(project="PROJ1", label="OFF")
    off = PrearchiveSession.objects.get(tag=study)
    build(off.pk)
    assert _archive(PrearchiveSession.objects.get(pk=off.pk)) == "error"
    off.refresh_from_db()
    assert "getURL is disabled on this site" in off.error_message and off.files.count() == 3
    assert hits == []

    site.dicom_edit_allow_get_url = True
    site.save()
    PrearchiveSession.objects.filter(pk=off.pk).update(status=S.READY)
    assert _archive(PrearchiveSession.objects.get(pk=off.pk)) == "archived"
    files = archived_files("PROJ1", "OFF")
    assert len(files) == 3 and {dcmread(f).StudyDescription for f in files} == {"FROM-URL"}
    assert hits


def test_get_url_in_the_site_script_at_intake_follows_the_setting(project, site, url_server):
    from prearchive.models import PrearchiveFile
    from prearchive.services import context

    url, hits = url_server
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = f'version "6.1"\n(0008,1030) := getURL["{url}"]\n'
    site.save()
    context.invalidate()
    from prearchive.services.intake import dicom_file_receive
    from tests.archive.conftest import incoming
    from tests.dicom_factory import make_dataset

    refused = dicom_file_receive(path=incoming(make_dataset()), source="test", params={"PROJECT_ID": "PROJ1"})
    assert refused.status == "rejected" and hits == []
    site.dicom_edit_allow_get_url = True
    site.save()
    context.invalidate()
    stored = dicom_file_receive(path=incoming(make_dataset()), source="test", params={"PROJECT_ID": "PROJ1"})
    assert stored.status == "stored", stored.reason
    row = PrearchiveFile.objects.get(sop_instance_uid=stored.sop_instance_uid)
    path = Path(str(settings.PREARCHIVE_ROOT)) / row.session.relative_dir / row.relative_path
    assert dcmread(path).StudyDescription == "FROM-URL" and hits
