"""The site-wide anonymization script at intake: applied once, with XNAT's variables; fails closed."""
from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from django.conf import settings

from prearchive.models import IntakeRejection, PrearchiveSession
from prearchive.services.builder import session_build
from prearchive.services.intake import IntakeError
from tests.dicom_factory import make_dataset

from .conftest import incoming, receive

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db


def stored_files():
    return list(Path(str(settings.PREARCHIVE_ROOT)).rglob("*.dcm"))


def test_the_default_script_runs_with_project_subject_session(anon, project):
    from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT

    anon(DEFAULT_SITE_ANON_SCRIPT)
    result = receive(make_dataset(PatientComments="Project:PROJ1 Subject:S01 Session:S01_MR1",
                                  PatientName="Doe^Jane", PatientID="MRN9"))
    assert result.status == "stored"
    (path,) = stored_files()
    ds = pydicom.dcmread(path)
    assert str(ds.PatientName) == "S01" and ds.PatientID == "S01_MR1" and ds.StudyDescription == "PROJ1"
    assert "PixelData" in ds  # read whole, written whole
    assert b"Doe^Jane" not in path.read_bytes() and b"MRN9" not in path.read_bytes()


@pytest.mark.parametrize("modality, expected", [("MR", "MR"), ("", "")])
def test_the_site_script_sees_the_files_modality_as_modality_label(anon, modality, expected):
    anon('version "6.1"\n(0008,103E) := modalityLabel\n')
    ds = make_dataset()
    if modality:
        ds.Modality = modality
    else:
        del ds.Modality
    assert receive(ds).status == "stored"
    (path,) = stored_files()
    assert pydicom.dcmread(path, stop_before_pixels=True).SeriesDescription == expected


def test_prevent_anon_stores_the_file_unchanged(anon):
    anon('version "6.1"\n(0010,0010) := "X"\n')
    src = incoming(make_dataset(PatientName="Keep^Me"))
    original = src.read_bytes()
    from prearchive.services.intake import dicom_file_receive

    assert dicom_file_receive(path=src, source="test", prevent_anon=True).status == "stored"
    (path,) = stored_files()
    assert path.read_bytes() == original
    assert PrearchiveSession.objects.get().prevent_anon is True


def test_a_disabled_site_script_leaves_files_unchanged(site):
    src = incoming(make_dataset(PatientName="Keep^Me"))
    original = src.read_bytes()
    from prearchive.services.intake import dicom_file_receive

    dicom_file_receive(path=src, source="test")
    assert stored_files()[0].read_bytes() == original


def test_reject_in_the_site_script_drops_the_file(anon):
    anon('version "6.1"\n(0008,103E) = "SCREEN SAVE" ? reject[]\n')
    result = receive(make_dataset(SeriesDescription="SCREEN SAVE"))
    assert result.status == "rejected" and "rejected" in result.reason
    assert not stored_files()
    assert PrearchiveSession.objects.get().rejected_count == 1
    assert receive(make_dataset(SeriesDescription="T1")).status == "stored"


def test_a_script_failing_on_a_file_keeps_it_out_and_the_session_errors(anon, monkeypatch):
    anon('version "6.1"\n(0010,0010) := "X"\n')
    from prearchive.services import adapters

    def explode(script, dataset, *, variables, run=None):
        dataset.PatientName = "half-done"
        raise RuntimeError("boom")

    monkeypatch.setattr(adapters, "script_apply", explode)
    result = receive(make_dataset(PatientName="Doe^Jane"))
    assert result.status == "rejected" and "failed" in result.reason
    assert not stored_files()
    assert not [p for p in Path(str(settings.PREARCHIVE_ROOT)).rglob("*") if p.is_file()]
    session = PrearchiveSession.objects.get()
    assert session.anon_failed_count == 1
    assert IntakeRejection.objects.get().reason_code == "anon_failed"
    PrearchiveSession.objects.filter(pk=session.pk).update(status=Status.QUEUED_BUILDING)
    assert session_build(session_id=session.pk) == Status.ERROR
    session.refresh_from_db()
    assert "anonymization script failed" in session.error_message


def test_a_script_that_does_not_compile_refuses_intake_and_keeps_the_file_out(anon):
    anon('version "6.1"\n(0010,0010) := \n')
    src = incoming(make_dataset())
    from prearchive.services.intake import dicom_file_receive

    with pytest.raises(IntakeError, match="does not compile"):
        dicom_file_receive(path=src, source="test")
    assert not stored_files() and not src.exists()
    assert PrearchiveSession.objects.count() == 0
