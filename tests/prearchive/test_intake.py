"""dicom_file_receive: rows, file tree, duplicates, late files and bad input."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from pydicom.uid import generate_uid

from prearchive.models import IntakeRejection, PrearchiveFile, PrearchiveSession
from tests.dicom_factory import make_dataset

from .conftest import incoming, receive, send_study

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db


def root() -> Path:
    return Path(str(settings.PREARCHIVE_ROOT))


def test_it_stores_files_in_xnats_tree(site, project):
    results = send_study(series=((1, "MR", 2), (2, "MR", 1)), PatientComments="Project:PROJ1 Subject:S01 Session:S01_MR1")
    assert [r.status for r in results] == ["stored"] * 3
    session = PrearchiveSession.objects.get()
    assert (session.project_id, session.subject, session.name, session.folder_name) == ("PROJ1", "S01", "S01_MR1", "S01_MR1")
    assert session.status == Status.RECEIVING
    assert len(session.timestamp) == 18 and session.timestamp[8] == "_"
    assert results[0].uri == f"/data/prearchive/projects/PROJ1/{session.timestamp}/S01_MR1"
    files = sorted(p.relative_to(root()).as_posix() for p in root().rglob("*.dcm"))
    assert len(files) == 3
    assert all(f.startswith(f"PROJ1/{session.timestamp}/S01_MR1/SCANS/") for f in files)
    assert {f.split("/")[4] for f in files} == {"1", "2"}
    assert all(f.split("/")[5] == "DICOM" for f in files)
    assert PrearchiveFile.objects.filter(session=session).count() == 3
    assert not list(Path(str(settings.UPLOAD_TMP_ROOT)).iterdir()), "the incoming file was moved, not copied"


def test_unassigned_goes_to_the_root_with_dicom_upload_label(site):
    ds = make_dataset(PatientID="", StudyDescription="nothing")
    result = receive(ds)
    session = PrearchiveSession.objects.get()
    assert session.project_id is None and session.name == "dicom_upload"
    assert result.uri.startswith("/data/prearchive/projects/Unassigned/")
    assert (root() / session.timestamp / "dicom_upload" / "SCANS" / "1" / "DICOM").is_dir()


def test_a_duplicate_sop_instance_replaces_the_earlier_copy(site, project):
    ds = make_dataset(PatientComments="Project:PROJ1", SeriesNumber=3)
    assert receive(ds).status == "stored"
    ds.SeriesNumber = 4  # resent in another series: the old copy must go
    result = receive(ds)
    assert result.status == "duplicate"
    row = PrearchiveFile.objects.get()
    assert row.scan_id == "4"
    assert [p.parts[-3] for p in root().rglob("*.dcm")] == ["4"]


def test_series_without_number_uses_the_series_uid(site):
    uid = generate_uid()
    receive(make_dataset(SeriesNumber=None, SeriesInstanceUID=uid))
    assert PrearchiveFile.objects.get().scan_id == uid.replace(".", "_")


@pytest.mark.parametrize("status,after", [
    (Status.READY, Status.RECEIVING), (Status.CONFLICT, Status.RECEIVING), (Status.ERROR, Status.RECEIVING),
    (Status.BUILDING, Status.RECEIVING_INTERRUPT), (Status.RECEIVING_INTERRUPT, Status.RECEIVING_INTERRUPT),
    (Status.ARCHIVING, Status.RECEIVING_INTERRUPT),
])
def test_late_files_follow_xnats_status_rules(site, status, after):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    PrearchiveSession.objects.update(status=status, error_message="old")
    receive(make_dataset(StudyInstanceUID=study))
    session = PrearchiveSession.objects.get()
    assert session.status == after
    assert session.files.count() == 2


def test_a_session_that_was_removed_gets_a_new_folder(site):
    study = generate_uid()
    first = receive(make_dataset(StudyInstanceUID=study))
    PrearchiveSession.objects.all().delete()  # archived and removed
    second = receive(make_dataset(StudyInstanceUID=study))
    assert second.status == "stored" and second.session_id != first.session_id
    assert PrearchiveSession.objects.get().files.count() == 1


def test_lastmod_moves_with_each_file(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    before = PrearchiveSession.objects.get().lastmod
    receive(make_dataset(StudyInstanceUID=study))
    assert PrearchiveSession.objects.get().lastmod > before


# ------------------------------------------------------------------ bad input


def _rejected(result, code):
    assert result.status == "rejected", result
    assert result.reason
    assert IntakeRejection.objects.filter(reason_code=code).count() == 1
    assert not list(root().rglob("*.dcm"))
    assert not [p for p in root().rglob("*") if p.is_file() and ".incoming" not in p.parts]
    assert not list(Path(str(settings.UPLOAD_TMP_ROOT)).iterdir())


def test_a_non_dicom_file_is_rejected(site, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not DICOM at all " * 20)
    _rejected(receive(path), "not_dicom")


def test_an_empty_file_is_rejected(site, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    _rejected(receive(path), "not_dicom")


def test_a_truncated_file_is_rejected(site, tmp_path):
    full = incoming(make_dataset(rows=64, columns=64))
    data = full.read_bytes()
    full.unlink()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 1000])
    _rejected(receive(path), "truncated")


def test_a_file_cut_inside_the_header_is_rejected(site, tmp_path):
    full = incoming(make_dataset())
    data = full.read_bytes()
    full.unlink()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[:300])
    _rejected(receive(path), "truncated")


def test_a_truncated_file_is_rejected_when_the_site_script_reads_it_whole(site, tmp_path):
    site.enable_sitewide_anonymization_script = True
    site.save()
    full = incoming(make_dataset(rows=64, columns=64))
    data = full.read_bytes()
    full.unlink()
    path = tmp_path / "cut.dcm"
    path.write_bytes(data[: len(data) - 1000])
    _rejected(receive(path), "truncated")


@pytest.mark.parametrize("missing", ["StudyInstanceUID", "SOPInstanceUID"])
def test_a_file_without_a_uid_is_rejected(site, missing):
    ds = make_dataset()
    delattr(ds, missing)
    result = receive(ds)
    _rejected(result, "missing_uid")
    assert missing in result.reason


def test_path_separators_in_labels_stay_inside_the_tree(site):
    result = receive(make_dataset(PatientComments="Subject:../../etc Session:..", PatientName="../../x",
                                  PatientID="../../../tmp/evil"))
    assert result.status == "stored"
    session = PrearchiveSession.objects.get()
    assert "/" not in session.name and ".." not in session.folder_name.replace("_", "")
    for path in root().rglob("*"):
        assert root() in path.resolve().parents
    assert not Path("/tmp/evil").exists()


def test_a_hostile_series_number_cannot_climb_the_tree(site, tmp_path):
    path = incoming(make_dataset(SeriesNumber=77))
    data = path.read_bytes()
    element = b"\x20\x00\x11\x00IS\x02\x0077"
    assert data.count(element) == 1
    path.write_bytes(data.replace(element, b"\x20\x00\x11\x00IS\x02\x00.."))
    from prearchive.services.intake import dicom_file_receive

    result = dicom_file_receive(path=path, source="test")
    assert result.status == "stored"
    assert PrearchiveFile.objects.get().scan_id not in ("..", ".")


def test_a_10000_character_patient_comment_is_refused_clearly(site):
    # A label is never cut short (two sessions could merge): an overlong one is a counted, clear refusal.
    result = receive(make_dataset(PatientComments="Session:" + "A" * 10_000 + " Subject:" + "/.." * 3000))
    _rejected(result, "invalid_value")
    assert "longer than 64" in result.reason and "AAAA" not in result.reason
    assert not PrearchiveFile.objects.exists()
    assert not any(p.is_file() for p in root().rglob("*"))


def test_path_separators_in_labels_become_label_characters(site):
    result = receive(make_dataset(PatientComments="Subject:a/../b Session:x\\y"))
    assert result.status == "stored"
    session = PrearchiveSession.objects.get()
    assert "/" not in session.subject and "\\" not in session.name and ".." not in session.subject


def test_an_overlong_label_from_routing_is_refused_clearly(site, monkeypatch):
    from prearchive.services import adapters

    real = adapters.route

    def long_label(**kwargs):
        routed = real(**kwargs)
        return type(routed)(project=routed.project, subject=routed.subject, session="B" * 500,
                            auto_archive=routed.auto_archive)

    monkeypatch.setattr(adapters, "route", long_label)
    result = receive(make_dataset())
    _rejected(result, "invalid_value")
    assert "longer than 64" in result.reason and "BBBB" not in result.reason


def test_a_bad_uid_is_rejected(site):
    ds = make_dataset()
    ds.StudyInstanceUID = "1.2/../../" + "9" * 100
    _rejected(receive(ds), "invalid_value")


def test_rejection_reasons_hold_no_phi(site, tmp_path):
    ds = make_dataset(PatientName="Secret^Person", PatientID="MRN12345")
    delattr(ds, "StudyInstanceUID")
    result = receive(ds)
    row = IntakeRejection.objects.get()
    for text in (result.reason, row.reason):
        assert "Secret" not in text and "MRN12345" not in text


def test_a_database_failure_is_an_intake_error(site, monkeypatch):
    from django.db import OperationalError

    from prearchive.services import intake

    def broken(**kwargs):
        raise OperationalError("connection lost")

    monkeypatch.setattr(intake, "_session_touch", broken)
    path = incoming(make_dataset())
    with pytest.raises(intake.IntakeError):
        intake.dicom_file_receive(path=path, source="test")
    assert not path.exists()
    assert not list(root().rglob("*.dcm"))


def test_a_full_disk_is_an_intake_error(site, monkeypatch):
    import errno

    from prearchive.services import intake, storage

    def full(src, dest):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(storage, "file_move_atomic", full)
    path = incoming(make_dataset())
    with pytest.raises(intake.IntakeError):
        intake.dicom_file_receive(path=path, source="test")
    assert not path.exists()
    assert PrearchiveFile.objects.count() == 0
