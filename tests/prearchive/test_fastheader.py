"""fastheader reads the plain file into exactly what headers.header_read (pydicom) gives, and declines
(None) everything else, so header_read keeps deciding those."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ExplicitVRLittleEndian,
                         ImplicitVRLittleEndian, JPEGBaseline8Bit, MRImageStorage, generate_uid)

from prearchive.services import fastheader
from prearchive.services.headers import header_read

EXTRA = ("PatientComments", "StudyComments", "AdditionalPatientHistory", "StudyDescription", "PatientName",
         "PatientID", "AccessionNumber")


def _file(*, ts=ExplicitVRLittleEndian, charset=None, sequence=False, private=True, compressed=False,
          empty=True, pixels=True, big=False, undefined_sq=False) -> bytes:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.Modality, ds.PatientName, ds.PatientID = "MR", "Doe^Jane", "PID-1"
    ds.StudyDescription, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "Brain", "T1 ", 3, 7
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientComments = "Project:X Subject:Y"
    if empty:
        ds.ReferringPhysicianName, ds.AccessionNumber = "", ""
    if sequence or undefined_sq:
        item = Dataset()
        item.Radiopharmaceutical = "FDG"
        ds.RadiopharmaceuticalInformationSequence = Sequence([item])
        other = Dataset()
        other.ReferencedSOPClassUID, other.ReferencedSOPInstanceUID = MRImageStorage, generate_uid()
        ds.ReferencedImageSequence = Sequence([other])
        if undefined_sq:
            ds["ReferencedImageSequence"].is_undefined_length = True
    if private:
        ds.add_new(0x00190010, "LO", "ACME 1.0")
        ds.add_new(0x00191001, "UN", b"\x01\x02\x03\x04")
    ds.Rows = ds.Columns = 16
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    if compressed:
        ds.PixelData = encapsulate([b"\xff\xd8frame\xff\xd9"])
        ds["PixelData"].VR = "OB"
    elif pixels:
        ds.PixelData = (np.arange(256, dtype=np.uint16)).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit if compressed else (ExplicitVRBigEndian if big else ts)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _same(a, b):
    assert a.size == b.size and a.end == b.end and a.full == b.full
    da, db = a.dataset, b.dataset
    assert list(da._dict) == list(db._dict) or sorted(da._dict) == sorted(db._dict)
    for tag in db._dict:
        assert da._dict[tag] == db._dict[tag], hex(tag)
        assert type(da._dict[tag]) is type(db._dict[tag])
    assert sorted(da.file_meta._dict) == sorted(db.file_meta._dict)
    for tag in db.file_meta._dict:
        assert type(da.file_meta._dict[tag]) is type(db.file_meta._dict[tag]), hex(tag)
        assert da.file_meta._dict[tag] == db.file_meta._dict[tag], hex(tag)
    assert da.original_encoding == db.original_encoding
    assert da.original_character_set == db.original_character_set
    assert da.preamble == db.preamble


CASES = [{}, {"ts": ImplicitVRLittleEndian}, {"charset": "ISO_IR 100"}, {"charset": "ISO_IR 192"},
         {"sequence": True}, {"ts": ImplicitVRLittleEndian, "sequence": True}, {"compressed": True},
         {"private": False, "empty": False}, {"ts": ImplicitVRLittleEndian, "charset": ["", "ISO 2022 IR 87"]}]


@pytest.mark.parametrize("kwargs", CASES)
@pytest.mark.parametrize("all_tags", [False, True])
def test_the_same_header_as_pydicom(kwargs, all_tags, tmp_path):
    raw = _file(**kwargs)
    expected = header_read(None, raw=raw, extra_tags=EXTRA, all_tags=all_tags)
    got = fastheader.header_read(None, raw=raw, extra_tags=EXTRA, all_tags=all_tags)
    assert got is not None
    _same(got, expected)
    path = tmp_path / "f.dcm"
    path.write_bytes(raw)
    from_file = fastheader.header_read(path, extra_tags=EXTRA, all_tags=all_tags)
    _same(from_file, header_read(path, extra_tags=EXTRA, all_tags=all_tags))


@pytest.mark.parametrize("kwargs", [{"big": True}, {"pixels": False}, {"undefined_sq": True},
                                    {"ts": DeflatedExplicitVRLittleEndian}])
def test_other_files_are_left_to_pydicom(kwargs):
    assert fastheader.header_read(None, raw=_file(**kwargs), extra_tags=EXTRA) is None


def test_truncated_bad_and_short_input_is_left_to_pydicom():
    raw = _file()
    for cut in (0, 10, 131, 140, 200, len(raw) // 2, len(raw) - 2):
        assert fastheader.header_read(None, raw=raw[:cut], extra_tags=EXTRA) is None, cut
    assert fastheader.header_read(None, raw=raw[128:], extra_tags=EXTRA) is None  # no preamble
    assert fastheader.header_read(None, raw=b"\x00" * 128 + b"DICM" + b"\xff" * 64, extra_tags=EXTRA) is None
    huge = bytearray(raw)
    at = bytes(huge).index(b"Doe^Jane") - 2  # the PN element's 16-bit length
    huge[at:at + 2] = b"\xff\xff"
    assert fastheader.header_read(None, raw=bytes(huge), extra_tags=EXTRA) is None


@pytest.mark.parametrize("compressed", [False, True])
def test_a_header_longer_than_the_first_read_is_read_on(compressed, tmp_path):
    """The first read takes FIRST_READ bytes; a longer header (here a 20 KB text element) is read further,
    up to CHUNK, and gives the same dataset as pydicom (the encapsulated end checked from the file's tail)."""
    ds = pydicom.dcmread(io.BytesIO(_file(compressed=compressed)))
    ds.add_new(0x00204000, "LT", "x" * (fastheader.FIRST_READ * 2 + 1))  # ImageComments, before the pixels
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    path = tmp_path / "long.dcm"
    path.write_bytes(buf.getvalue())
    extra = EXTRA + ("ImageComments",)
    got = fastheader.header_read(path, extra_tags=extra)
    assert got is not None and got.end > fastheader.FIRST_READ
    _same(got, header_read(path, extra_tags=extra))
    assert got.dataset.ImageComments == "x" * (fastheader.FIRST_READ * 2 + 1)
    assert fastheader.header_read(None, raw=path.read_bytes()[:fastheader.FIRST_READ + 10], extra_tags=extra) is None
