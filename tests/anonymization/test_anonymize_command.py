"""manage.py anonymize end to end on real files written with pydicom (DESIGN.md §6)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from anonymization.dicomedit import hash_uid

STUDY = "1.3.46.670589.11.5730.5.0.1744.2010043012343685002"


def write_mr(path: Path, *, series: int = 1, patient: str = "Doe^Jane") -> Path:
    ds = Dataset()
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "MR"
    ds.PatientName = patient
    ds.PatientID = "PID0001"
    ds.PatientBirthDate = "19700101"
    ds.SeriesNumber = series
    ds.Rows = ds.Columns = 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.arange(16, dtype="<u2").tobytes()
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x0F, "SH", "Fast")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        call_command("anonymize", *args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


SCRIPT6 = """version "6.6"
-(0010,0030)
(0010,0010) := subject
(0010,0020) := session
(0020,000D) := hashUID[(0020,000D)]
(0008,0018) := newUID[]
(0020,0011) = "9" ? reject[]
(0019,{SIEMENS MR HEADER}0F) := "changed"
"""


def test_anonymize_directory_and_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    write_mr(src / "s1" / "a.dcm")
    write_mr(src / "s1" / "b.dcm")
    write_mr(src / "s9" / "rejected.dcm", series=9)
    single = write_mr(tmp_path / "single" / "one.dcm")
    script = tmp_path / "site.das"
    script.write_text(SCRIPT6)
    out = tmp_path / "out"
    code, stdout, err = run(capsys, str(script), str(src), str(single), "--out", str(out),
                            "--var", "subject=SUBJ1", "--var", "session=SESS1")
    assert code == 0, err
    assert "3 written, 1 rejected, 0 failed" in stdout
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "one.dcm", "s1/a.dcm", "s1/b.dcm"]
    ds = dcmread(out / "s1" / "a.dcm")
    assert "PatientBirthDate" not in ds
    assert (str(ds.PatientName), ds.PatientID) == ("SUBJ1", "SESS1")
    assert ds.StudyInstanceUID == hash_uid(STUDY)
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    assert ds.SOPInstanceUID.startswith("2.25.")
    assert ds.private_block(0x0019, "SIEMENS MR HEADER")[0x0F].value == "changed"
    item = ds.DeidentificationMethodCodeSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodingSchemeVersion, item.CodeMeaning) == (
        "1", "XNAT", "1.0", "XNAT DicomEdit 6 Script")
    assert np.array_equal(ds.pixel_array.ravel(), np.arange(16))
    assert not list(out.rglob(".*.tmp"))


def test_syntax_error_exits_2_with_location(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_mr(tmp_path / "in" / "a.dcm")
    script = tmp_path / "bad.das"
    script.write_text('version "6.1"\n(0010,0010) := frobnicate["x"]\n')
    code, _, err = run(capsys, str(script), str(src), "--out", str(tmp_path / "out"))
    assert code == 2
    assert err.strip() == "2:16: unknown function 'frobnicate'"
    assert not (tmp_path / "out").exists()


def test_failed_file_exits_1_and_others_still_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "in"
    write_mr(src / "good.dcm")
    (src / "junk.dcm").write_bytes(b"not dicom at all")
    script = tmp_path / "s.das"
    script.write_text('version "6.1"\n(0010,0010) := "ANON"\n')
    code, stdout, err = run(capsys, str(script), str(src), "--out", str(tmp_path / "out"))
    assert code == 1
    assert "1 written, 0 rejected, 1 failed" in stdout
    assert "junk.dcm" in err and "Doe" not in err
    assert str(dcmread(tmp_path / "out" / "good.dcm").PatientName) == "ANON"


def test_runtime_error_names_line_and_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_mr(tmp_path / "in" / "a.dcm")
    script = tmp_path / "s.das"
    script.write_text('version "6.1"\n(0010,0010) := substring[(0010,0010), 0, 99]\n')
    code, _, err = run(capsys, str(script), str(src), "--out", str(tmp_path / "out"))
    assert code == 1
    assert "line 2: substring range [0, 99) out of bounds" in err
    assert not (tmp_path / "out" / "a.dcm").exists()


def test_de4_script_and_forced_dialect(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_mr(tmp_path / "in" / "a.dcm")
    script = tmp_path / "de4.das"
    script.write_text('(0008,0060) = "MR" : (0008,1030) := project\n-(0019,100f)\n')
    code, _, err = run(capsys, str(script), str(src), "--out", str(tmp_path / "o4"), "--var", "project=P1")
    assert code == 0, err
    ds = dcmread(tmp_path / "o4" / "a.dcm")
    assert ds.StudyDescription == "P1"
    assert (0x0019, 0x100F) not in ds
    assert ds.DeidentificationMethodCodeSequence[0].CodeMeaning == "XNAT DicomEdit 4 Script"
    code, _, err = run(capsys, str(script), str(src), "--out", str(tmp_path / "o6"), "--dialect", "6",
                       "--var", "project=P1")
    assert code == 2
    assert err.strip() == "1:20: unexpected ':': expected '?' and an action"
