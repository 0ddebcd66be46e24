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


def test_ui_allow_quarantine_off_hides_and_refuses_the_quarantine_setting(admin_client, admin_user, project, site):
    page = admin_client.get("/admin/xnatlite/project/PROJ1/change/").content.decode()
    assert 'name="quarantine_code"' in page
    assert 'name="quarantine_code"' in admin_client.get("/projects/PROJ1/manage/").content.decode()
    site.ui_allow_quarantine = False
    site.save()
    assert 'name="quarantine_code"' not in admin_client.get("/admin/xnatlite/project/PROJ1/change/").content.decode()
    manage = admin_client.get("/projects/PROJ1/manage/").content.decode()
    assert 'name="quarantine_code"' not in manage and 'name="prearchive_code"' in manage
    r = admin_client.post("/projects/PROJ1/manage/", {"section": "codes", "prearchive_code": "0", "quarantine_code": "1"})
    assert r.status_code in (200, 302)
    r = admin_client.put("/data/projects/PROJ1/quarantine_code/1")
    assert r.status_code == 403 and b"Quarantine is not allowed" in r.content
    project.refresh_from_db()
    assert project.quarantine_code == 0


def test_received_file_user_is_who_auto_archives_received_data(project, site, django_user_model):
    """receivedFileUser: the account recorded for operations on received data (the auto-archive of a C-STORE
    session: the archived session's archived_by and the audit's actor)."""
    from prearchive.services.archive import session_archive
    from xnatlite.models import AuditEvent, ImageSession

    django_user_model.objects.create_superuser("robot", "r@example.org", "robot-pass-1")
    site.received_file_user = "robot"
    site.save()
    project.prearchive_code = 4
    project.save()
    study = send_study(project="PROJ1", label="AUTO1")
    session = PrearchiveSession.objects.get(tag=study)
    build(session.pk)
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.QUEUED_ARCHIVING
    assert session_archive(session_id=session.pk) == "archived"
    assert ImageSession.objects.get(label="AUTO1").archived_by == "robot"
    assert AuditEvent.objects.get(action="session_archive").actor == "robot"


def test_stored_files_are_named_by_the_dicom_file_name_template(project, site):
    """dicomFileNameTemplate (XNAT's default: StudyUID-Series-Instance-hash), a custom one, and the check of
    unknown names when the setting is saved."""
    from prearchive.models import PrearchiveFile
    from prearchive.services import context
    from xnatlite.forms import SiteConfigForm
    from django.forms.models import model_to_dict

    study = send_study(project="PROJ1", label="NAMES", series=((3, "MR", 2),))
    rows = list(PrearchiveFile.objects.filter(session__tag=study).order_by("instance_number"))
    for row in rows:
        name = row.relative_path.rsplit("/", 1)[-1]
        assert name.startswith(f"{study}-3-{row.instance_number}-") and name.endswith(".dcm")
        assert (Path(str(settings.PREARCHIVE_ROOT)) / row.session.relative_dir / row.relative_path).is_file()
    assert rows[0].relative_path != rows[1].relative_path

    site.dicom_file_name_template = "${Modality}_${SeriesNumber}_${InstanceNumber}"
    site.save()
    context.invalidate()
    study = send_study(project="PROJ1", label="CUSTOM", series=((4, "MR", 2),))
    names = sorted(r.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.filter(session__tag=study)
                   .values_list("relative_path", flat=True))
    assert names == ["MR_4_1.dcm", "MR_4_2.dcm"]

    data = {k: v for k, v in model_to_dict(site).items() if v is not None}
    form = SiteConfigForm(data=dict(data, dicom_file_name_template="${NoSuchKeyword}-${SeriesNumber}"),
                          instance=site)
    assert not form.is_valid() and "NoSuchKeyword" in str(form.errors["dicom_file_name_template"])


def test_session_archive_timeout_interval_has_left_the_settings_page_and_the_api(admin_client, admin_user, site):
    page = admin_client.get(f"/admin/xnatlite/siteconfig/{site.pk}/change/").content.decode()
    assert 'name="session_archive_timeout_interval"' not in page
    assert 'name="received_file_user"' in page
    body = admin_client.get("/xapi/siteConfig").json()
    assert "sessionArchiveTimeoutInterval" not in body and "receivedFileUser" in body
