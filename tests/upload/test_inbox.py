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
    # 422 (was 200): the file without a Study UID was thrown away, and the answer says so (issue 16 item 10)
    assert r.status_code == 422, r.content
    assert "1 of 152 file(s) were refused" in r.content.decode()
    assert "The file has no StudyInstanceUID." in r.content.decode()
    assert sum(len(c.kwargs["rows"]) for c in grouped.call_args_list) == 149  # all but the first, in groups
    assert PrearchiveFile.objects.count() == 150 == len(originals)
    assert not any(p.exists() for p in originals)
    assert sorted(p.name for p in (root / "big").rglob("*") if p.is_file()) == ["junk.dcm", "no_study.dcm"]
    session = PrearchiveSession.objects.get()
    assert session.uri in r.content.decode()
    on_disk = {p.name for p in (settings.PREARCHIVE_ROOT / session.relative_dir).rglob("*.dcm")}
    assert on_disk == {row.relative_path.rsplit("/", 1)[-1] for row in session.files.all()}


# ------------------------------------------------------------------ a folder swapped for a link mid-import

def _race_tree(tmp_path):
    """inbox/batch (2 series × 3 files), and outside the root a victim folder of the same shape (another
    patient) that the swap points the inbox's batch to."""
    root = tmp_path / "inbox"
    inside = session_files(root / "batch", series=2, per_series=3, PatientID="INSIDE1")
    victim = session_files(tmp_path / "outside" / "victim", series=2, per_series=3, PatientID="VICTIM1")
    config = site_config_get()
    config.inbox_path = str(root)
    config.save()
    return root, inside, victim


def _swap(root, tmp_path):
    """Rename the inbox's batch folder away (outside the root) and put a link to the victim in its place."""
    os.rename(root / "batch", tmp_path / "outside" / "moved")
    os.symlink(tmp_path / "outside" / "victim", root / "batch")


def _sops(paths):
    import pydicom

    return {str(pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


@pytest.mark.parametrize("cleanup", [False, True])
def test_folder_swapped_for_a_link_between_listing_and_opening_reads_nothing_outside(
        member, tmp_path, cleanup):
    """The swap happens while the first file is copied (after the folder was listed and that file opened):
    no file of the victim is imported, none is removed, and the moved originals all survive."""
    from upload import inbox as inbox_module
    from upload.inbox import inbox_import

    root, inside, victim = _race_tree(tmp_path)
    victim_sops, inside_sops = _sops(victim), _sops(inside)
    real_mkstemp = inbox_module.tempfile.mkstemp
    calls = []

    def mkstemp_then_swap(*args, **kwargs):
        if not calls:
            _swap(root, tmp_path)
        calls.append(1)
        return real_mkstemp(*args, **kwargs)

    params = {"PROJECT_ID": "PROJ1", "SUBJECT_ID": "R1", "EXPT_LABEL": "R1_MR"}
    if cleanup:
        params["cleanupAfterImport"] = "true"
    with mock.patch.object(inbox_module.tempfile, "mkstemp", side_effect=mkstemp_then_swap):
        report = inbox_import(path="batch", params=params, user=member)
    imported = set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert calls, "the swap hook never ran"
    assert not imported & victim_sops
    assert imported <= inside_sops
    assert all(p.exists() for p in victim), "a file outside the inbox root was removed"
    moved = [tmp_path / "outside" / "moved" / p.relative_to(root / "batch") for p in inside]
    assert all(p.exists() for p in moved), "an original moved out of the root was removed"
    assert len(imported) == 1  # the file open when the swap came; the rest of the moved folder is not read
    assert any("moved or replaced" in reason for _, reason in report.skipped)


def test_folder_swapped_before_the_originals_are_removed_removes_nothing_outside(member, tmp_path):
    """cleanupAfterImport=true and the swap right after the first file's result: the originals still to be
    removed are reached through the folder that was read, not through the path, so no victim file goes."""
    from upload.inbox import inbox_import

    root, inside, victim = _race_tree(tmp_path)
    victim_sops = _sops(victim)
    swapped = []

    def progress(done, total):
        if not swapped:
            _swap(root, tmp_path)
            swapped.append(done)

    inbox_import(path="batch", params={"PROJECT_ID": "PROJ1", "SUBJECT_ID": "R2", "EXPT_LABEL": "R2_MR",
                                       "cleanupAfterImport": "true"}, user=member, progress=progress)
    assert swapped
    imported = set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert not imported & victim_sops
    assert all(p.exists() for p in victim), "a file outside the inbox root was removed"
    moved = [tmp_path / "outside" / "moved" / p.relative_to(root / "batch") for p in inside]
    assert sum(not p.exists() for p in moved) == 1  # only the first, removed before the swap


def test_a_subfolder_swapped_for_a_link_after_the_listing_is_not_followed(member, tmp_path):
    """batch/s2 replaced by a link to the victim while batch/s1 is read: s2 is skipped and reported."""
    from upload import inbox as inbox_module
    from upload.inbox import inbox_import

    root, inside, victim = _race_tree(tmp_path)
    victim_sops = _sops(victim)
    real_mkstemp = inbox_module.tempfile.mkstemp
    calls = []

    def mkstemp_then_swap(*args, **kwargs):
        if not calls:
            os.rename(root / "batch" / "s2", tmp_path / "outside" / "s2_moved")
            os.symlink(tmp_path / "outside" / "victim" / "s2", root / "batch" / "s2")
        calls.append(1)
        return real_mkstemp(*args, **kwargs)

    with mock.patch.object(inbox_module.tempfile, "mkstemp", side_effect=mkstemp_then_swap):
        report = inbox_import(path="batch", params={"PROJECT_ID": "PROJ1", "SUBJECT_ID": "R3",
                                                    "EXPT_LABEL": "R3_MR", "cleanupAfterImport": "true"},
                              user=member)
    imported = set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert not imported & victim_sops
    assert len(imported) == 3  # batch/s1 only
    assert all(p.exists() for p in victim)
    assert "batch/s2" in dict(report.skipped)  # reported (opened before the swap: as moved; after: as a link)
