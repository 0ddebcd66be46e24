"""The DICOM inbox: REST (import-handler=inbox) and manage.py import_inbox; never outside the root."""
from __future__ import annotations

import os
from unittest import mock

import pytest
from django.core.management import CommandError, call_command

from prearchive.models import PrearchiveFile, PrearchiveSession
from tests.dicom_factory import write_dicom
from tests.upload.helpers import ADMIN, MEMBER, basic, session_files
from xnatlite.selectors import site_config_get

URL = "/data/services/import"


@pytest.fixture
def inbox(tmp_path, db):
    root = tmp_path / "inbox"
    (root / "batch1").mkdir(parents=True)
    config = site_config_get()
    config.inbox_path = str(root)
    config.save()
    return root


def test_rest_inbox_imports_a_folder_and_reports_what_it_skipped(client, member, inbox, tmp_path):
    session_files(inbox / "batch1", series=2, per_series=2, PatientID="INBOX1")
    (inbox / "batch1" / "notes.txt").write_text("not dicom")
    outside = write_dicom(tmp_path / "outside" / "secret.dcm")
    os.symlink(outside, inbox / "batch1" / "link.dcm")
    os.symlink(outside.parent, inbox / "batch1" / "linkdir")
    r = client.post(f"{URL}?import-handler=inbox&path=batch1&PROJECT_ID=PROJ1&SUBJECT_ID=IN1&EXPT_LABEL=IN1_MR",
                    **basic(*MEMBER))
    assert r.status_code == 200, r.content
    session = PrearchiveSession.objects.get()
    assert r.content.decode() == session.uri + "\r\n"
    assert PrearchiveFile.objects.count() == 4
    assert (inbox / "batch1" / "s1" / "i1.dcm").exists()  # originals stay


def test_rest_inbox_refuses_paths_outside_the_root(client, admin_user, inbox, tmp_path, settings):
    write_dicom(tmp_path / "elsewhere" / "x.dcm")
    os.symlink(tmp_path / "elsewhere", inbox / "escape")
    for path in (str(tmp_path / "elsewhere"), "../elsewhere", "escape", "batch1/../../elsewhere"):
        r = client.post(f"{URL}?import-handler=inbox&path={path}", **basic(*ADMIN))
        assert r.status_code == 403, (path, r.content)
        assert "outside the DICOM inbox root" in r.content.decode()
    assert PrearchiveFile.objects.count() == 0


def test_rest_inbox_needs_a_configured_root_and_rights(client, member, collaborator, db, tmp_path):
    r = client.post(f"{URL}?import-handler=inbox&path=x&PROJECT_ID=PROJ1", **basic(*MEMBER))
    assert r.status_code == 400 and "not configured" in r.content.decode()
    r = client.post(f"{URL}?import-handler=inbox&path=x&PROJECT_ID=PROJ1", **basic("carla", "carla-pass-1"))
    assert r.status_code == 403


def test_import_inbox_command(admin_user, project, inbox, capsys):
    session_files(inbox / "batch1", series=1, per_series=3)
    (inbox / "batch1" / "junk.bin").write_bytes(b"\x00" * 10)
    call_command("import_inbox", "batch1", "--project", "PROJ1", "--subject", "C1", "--session", "C1_MR")
    out = capsys.readouterr().out
    assert "stored 3" in out and "skipped 1" in out and "junk.bin" in out
    assert PrearchiveSession.objects.get().name == "C1_MR"
    with pytest.raises(CommandError, match="outside the DICOM inbox root"):
        call_command("import_inbox", "/etc")


@pytest.mark.django_db(transaction=True)
def test_cleanup_after_import_removes_exactly_the_stored_originals(client, member, tmp_path, settings):
    """In autocommit on PostgreSQL the rows are written in groups; each original is removed only once
    its own file is stored, and never one that was refused."""
    from prearchive.services import fastpath
    from tests.dicom_factory import make_dataset, write_dataset

    root = tmp_path / "inbox"
    (root / "big").mkdir(parents=True)
    config = site_config_get()
    config.inbox_path = str(root)
    config.enable_sitewide_anonymization_script = False
    config.save()
    originals = session_files(root / "big", series=3, per_series=50, PatientID="BIG1")
    (root / "big" / "junk.dcm").write_bytes(b"DICM but not really")
    no_uid = make_dataset()
    del no_uid.StudyInstanceUID
    write_dataset(no_uid, root / "big" / "no_study.dcm")
    with mock.patch.object(fastpath, "touch_and_insert_many", wraps=fastpath.touch_and_insert_many) as grouped:
        r = client.post(f"{URL}?import-handler=inbox&path=big&PROJECT_ID=PROJ1&SUBJECT_ID=B1&EXPT_LABEL=B1_MR"
                        "&cleanupAfterImport=true", **basic(*MEMBER))
    assert r.status_code == 200, r.content
    assert sum(len(c.kwargs["rows"]) for c in grouped.call_args_list) == 149  # all but the first, in groups
    assert PrearchiveFile.objects.count() == 150 == len(originals)
    assert not any(p.exists() for p in originals)
    assert sorted(p.name for p in (root / "big").rglob("*") if p.is_file()) == ["junk.dcm", "no_study.dcm"]
    session = PrearchiveSession.objects.get()
    on_disk = {p.name for p in (settings.PREARCHIVE_ROOT / session.relative_dir).rglob("*.dcm")}
    assert on_disk == {row.relative_path.rsplit("/", 1)[-1] for row in session.files.all()}
