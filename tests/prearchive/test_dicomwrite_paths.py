"""Issue 16 item 2: what intake stores after the site script is byte for byte what a full read, the script
and pydicom's writer give, on every transfer syntax and with elements after the pixel data (trailing
padding, digital signatures, GE ultrasound's private movie group sequence holding patient data). Intake
takes the header-only path (dicomwrite) where it can and the full read elsewhere: these tests hold it to
the full read's result either way, and check which way it went."""
from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.uid import (UID, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, JPEGBaseline8Bit, JPEGLossless, JPEGLosslessSV1, RLELossless)

from anonymization.services import script_compile
from prearchive.models import UNASSIGNED, PrearchiveSession
from prearchive.services import dicomwrite, fastheader
from prearchive.services.headers import header_read
from prearchive.services.intake import _encode, dicom_file_receive
from tests.dicom_factory import TAIL_PHI, add_tail, dataset_bytes, encapsulated, make_dataset
from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT

from .conftest import incoming

pytestmark = pytest.mark.django_db

TRANSFER_SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian,
                     JPEGBaseline8Bit, JPEGLossless, JPEGLosslessSV1, RLELossless]
TAILS = ["none", "padding", "signature", "ge", "ge_defined"]
V = 'version "6.6"\n'
SCRIPTS = {
    "default": DEFAULT_SITE_ANON_SCRIPT,
    "removeAllPrivateTags": DEFAULT_SITE_ANON_SCRIPT + "removeAllPrivateTags\n",
    "retainPrivateTags": V + '(0010,0010) := subject\n(0010,0020) := session\n-(0010,0030)\n'
                             'retainPrivateTags["(0019,{ACME 1.0}01)"]\n',
    "wildcard": V + '-*/(0010,0010)\n-*/(0010,0020)\n-*/(0010,0030)\n',
}
# The scripts that must leave nothing of the patient in the file (the default one only sets top-level values).
SCRUBBING = ("removeAllPrivateTags", "retainPrivateTags", "wildcard")


def _file(ts: str, tail: str, **tags) -> bytes:
    ds = make_dataset(**tags)
    ds.add_new(0x00190010, "LO", "ACME 1.0")
    ds.add_new(0x00191001, "LO", "keep me")
    ds.add_new(0x00191002, "LO", "drop me")
    ds.file_meta.TransferSyntaxUID = ts
    if UID(ts).is_compressed and ts != DeflatedExplicitVRLittleEndian:
        encapsulated(ds, ts)
    return dataset_bytes(add_tail(ds, tail))


def _header_only_possible(raw: bytes) -> bool:
    """Would intake's header-only writer take this file (as intake asks it)?"""
    header = fastheader.header_read(None, raw=raw, all_tags=True) or header_read(None, raw=raw, all_tags=True)
    return dicomwrite.dataset_pixel_length(header.dataset, raw, header.end) is not None


def _expected(raw: bytes, text: str, session: PrearchiveSession) -> bytes:
    ds = pydicom.dcmread(io.BytesIO(raw))
    variables = {"project": session.project_id or UNASSIGNED, "subject": session.subject, "session": session.name,
                 "modalityLabel": str(ds.Modality)}
    script_compile(text=text).apply(ds, variables=variables)
    return _encode(ds)


def _stored() -> bytes:
    (path,) = list(Path(str(settings.PREARCHIVE_ROOT)).rglob("*.dcm"))
    return path.read_bytes()


@pytest.mark.parametrize("tail", TAILS)
@pytest.mark.parametrize("ts", TRANSFER_SYNTAXES, ids=lambda ts: UID(ts).keyword or str(ts))
@pytest.mark.parametrize("given", ["path", "bytes"])
def test_intake_stores_what_the_full_read_would(anon, ts, tail, given):
    text = SCRIPTS["removeAllPrivateTags" if tail == "ge" else "default"]
    anon(text)
    raw = _file(ts, tail, PatientComments="Project:none Subject:S01 Session:S01_MR1")
    plain = UID(ts) in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or (
        UID(ts).is_compressed and ts != DeflatedExplicitVRLittleEndian)
    # The header-only writer is used exactly for little endian files with nothing after the pixel data.
    assert _header_only_possible(raw) is (plain and tail == "none")
    if given == "path":
        result = dicom_file_receive(path=incoming(_written(raw)), source="test")
    else:
        result = dicom_file_receive(data=raw, source="test")
    assert result.status == "stored", result.reason
    session = PrearchiveSession.objects.get()
    got = _stored()
    assert got == _expected(raw, text, session)
    back = pydicom.dcmread(io.BytesIO(got))
    assert str(back.PatientName) == "S01" and back.PatientID == "S01_MR1"
    if tail == "padding":
        assert 0xFFFCFFFC in back
    if tail == "signature":
        assert 0xFFFAFFFA in back


def _written(raw: bytes) -> Path:
    path = Path(str(settings.UPLOAD_TMP_ROOT)) / "src.dcm"
    path.write_bytes(raw)
    return path


@pytest.mark.parametrize("script", SCRUBBING)
@pytest.mark.parametrize("tail", ["ge", "ge_defined"])
@pytest.mark.parametrize("ts", [JPEGBaseline8Bit, RLELossless, ExplicitVRLittleEndian, ImplicitVRLittleEndian],
                         ids=lambda ts: UID(ts).keyword)
def test_patient_data_after_the_pixel_data_does_not_pass_the_site_script(anon, ts, tail, script):
    """The GE ultrasound case: the private sequence after (7FE0,0010) held a patient name, ID and birth date
    that came through retainPrivateTags, wildcard deletes and removeAllPrivateTags."""
    anon(SCRIPTS[script])
    raw = _file(ts, tail)
    for value in TAIL_PHI.values():
        assert raw.count(value.encode()) == 1  # in the trailing sequence
    result = dicom_file_receive(data=raw, source="test")
    assert result.status == "stored", result.reason
    got = _stored()
    assert got == _expected(raw, SCRIPTS[script], PrearchiveSession.objects.get())
    for value in (*TAIL_PHI.values(), "Doe^Jane"):
        assert value.encode() not in got, value
    back = pydicom.dcmread(io.BytesIO(got))
    assert (0x7FE11001 in back) is (script == "wildcard")  # the private sequence goes, or its values do
    assert back.PixelData == pydicom.dcmread(io.BytesIO(raw)).PixelData
    if script == "retainPrivateTags":
        assert b"keep me" in got and b"drop me" not in got


def test_the_fragment_walk_finds_the_delimiter_of_the_pixel_data_not_of_a_later_sequence():
    ds = encapsulated(make_dataset(), JPEGBaseline8Bit, frames=3)
    plain = dataset_bytes(ds)
    tailed = dataset_bytes(add_tail(ds, "ge"))
    assert plain[-8:] == tailed[-8:] == b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    for raw, expect_whole in ((plain, True), (tailed, False)):
        header = header_read(None, raw=raw, all_tags=True)
        assert (dicomwrite.pixel_length(raw, header.end, False) is not None) is expect_whole
    # A fragment whose length runs past the end of the file: no delimiter, no header-only write.
    header = header_read(None, raw=plain, all_tags=True)
    broken = bytearray(plain)
    broken[header.end + 12 + 4:header.end + 12 + 8] = (0x7FFFFFF0).to_bytes(4, "little")
    assert dicomwrite.pixel_length(bytes(broken), header.end, False) is None


def test_a_defined_length_element_after_encapsulated_pixel_data_is_not_called_truncated(tmp_path):
    """The file does not end with a delimiter, but its fragments lead to one: the header read accepts it
    (it used to reject it as truncated), from a path and from bytes."""
    raw = _file(JPEGBaseline8Bit, "ge_defined")
    assert raw[-8:-4] != b"\xfe\xff\xdd\xe0"
    path = tmp_path / "f.dcm"
    path.write_bytes(raw)
    for header in (header_read(path, all_tags=True), header_read(None, raw=raw, all_tags=True)):
        assert header.end is not None and not header.full
    cut = raw[:header_read(None, raw=raw).end + 40]  # cut inside the fragments
    with pytest.raises(Exception) as info:
        header_read(None, raw=cut)
    assert "truncated" in str(info.value)
