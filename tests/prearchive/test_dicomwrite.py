"""dicomwrite: the site script applied to the header only, written in front of the original pixel bytes, is
byte for byte what a full read + apply + pydicom dcmwrite gives."""
from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence
from pydicom.uid import (ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit, MRImageStorage,
                         generate_uid)

from anonymization.services import script_compile
from prearchive.services import dicomwrite
from prearchive.services.headers import HeaderError, header_read
from prearchive.services.intake import _encode
from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT

VARIABLES = {"project": "PRJ", "subject": "SUBJ", "session": "SESS", "modalityLabel": "MR"}


def _file(*, ts=ExplicitVRLittleEndian, charset=None, sequences=True, private=True, compressed=False,
          trailing=False) -> bytes:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    if charset:
        ds.SpecificCharacterSet = charset
    ds.Modality, ds.PatientName, ds.PatientID, ds.PatientBirthDate = "MR", "Doe^Jane", "PID-1", "19700101"
    ds.StudyDescription, ds.SeriesDescription, ds.SeriesNumber, ds.InstanceNumber = "Brain", "T1 ", 3, 7
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PatientComments = "Project:X Subject:Y"
    ds.ReferringPhysicianName, ds.AccessionNumber = "", ""  # empty: pydicom reads them as value None
    if sequences:
        item = Dataset()
        item.ReferencedSOPClassUID, item.ReferencedSOPInstanceUID = MRImageStorage, generate_uid()
        ds.ReferencedImageSequence = Sequence([item])
    if private:
        ds.add_new(0x00190010, "LO", "ACME 1.0")
        ds.add_new(0x00191001, "UN", b"\x01\x02\x03\x04")
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    pixels = (np.arange(32 * 32, dtype=np.uint16) % 4096).tobytes()
    if compressed:
        ds.BitsAllocated = ds.BitsStored = 8
        ds.HighBit = 7
        ds.PixelData = encapsulate([b"\xff\xd8fakejpegframe\xff\xd9"])
        ds["PixelData"].VR = "OB"
    else:
        ds.PixelData = pixels
    if trailing:
        ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 8)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit if compressed else ts
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _both(raw: bytes, text: str = DEFAULT_SITE_ANON_SCRIPT):
    script = script_compile(text=text)
    full = header_read(None, raw=raw, full=True).dataset
    script.apply(full, variables=VARIABLES)
    expected = _encode(full)
    header = header_read(None, raw=raw, all_tags=True)
    assert dicomwrite.dataset_pixel_length(header.dataset, raw, header.end) is not None
    ds = header.dataset
    original = dicomwrite.snapshot(ds)
    for keyword in ("PatientComments", "StudyDescription", "Modality", "SOPInstanceUID", "ImageType"):
        ds.get(keyword)  # intake decodes some elements to route and filter
    ds.file_meta.get("TransferSyntaxUID")
    before = dicomwrite.snapshot(ds)
    script.apply(ds, variables=VARIABLES)
    assert dicomwrite.encode(ds, raw, header.end) == expected  # without the snapshots
    return expected, dicomwrite.encode(ds, raw, header.end, original=original[0], before=before[0],
                                       original_meta=original[1], before_meta=before[1])


@pytest.mark.parametrize("kwargs", [
    {}, {"ts": ImplicitVRLittleEndian}, {"sequences": False, "private": False}, {"charset": "ISO_IR 100"},
    {"compressed": True}, {"ts": ImplicitVRLittleEndian, "charset": "ISO_IR 192"},
])
def test_header_only_write_is_byte_identical(kwargs):
    raw = _file(**kwargs)
    expected, got = _both(raw)
    assert got is not None
    assert got == expected
    out = pydicom.dcmread(io.BytesIO(got))
    assert str(out.PatientName) == "SUBJ" and out.PatientID == "SESS" and out.StudyDescription == "PRJ"
    assert out[0x00120064].value[0].CodeValue  # the de-identification record
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert out.PixelData == pydicom.dcmread(io.BytesIO(raw)).PixelData


def test_a_changed_sop_instance_uid_reaches_the_file_meta():
    raw = _file()
    expected, got = _both(raw, DEFAULT_SITE_ANON_SCRIPT + '(0008,0018) := "1.2.3.4.5"\n')
    assert got == expected
    assert pydicom.dcmread(io.BytesIO(got)).file_meta.MediaStorageSOPInstanceUID == "1.2.3.4.5"


def test_elements_after_the_pixel_data_take_the_full_path():
    raw = _file(trailing=True)
    header = header_read(None, raw=raw, all_tags=True)
    assert dicomwrite.dataset_pixel_length(header.dataset, raw, header.end) is None


def test_a_script_that_names_the_pixel_data_is_applied_to_the_whole_file():
    assert dicomwrite.script_is_header_only(DEFAULT_SITE_ANON_SCRIPT)
    assert not dicomwrite.script_is_header_only('-(7FE0,0010)\n')
    assert not dicomwrite.script_is_header_only('alterPixels["rectangle", "l=0, t=0, r=1, b=1", "solid", "v=0"]\n')


def test_short_pixel_data_is_truncated():
    raw = _file()
    header = header_read(None, raw=raw, all_tags=True)
    with pytest.raises(HeaderError):
        dicomwrite.pixel_length_check(header.dataset, 100)


def test_a_script_adding_a_charset_falls_back():
    raw = _file()
    header = header_read(None, raw=raw, all_tags=True)
    script_compile(text='(0008,0005) := "ISO_IR 192"\n').apply(header.dataset, variables=VARIABLES)
    assert dicomwrite.encode(header.dataset, raw, header.end) is None


def test_a_file_as_the_receiver_hands_it_over():
    """pynetdicom's encoded_dataset(): the dataset in the association's transfer syntax (here implicit VR)
    behind file meta it writes itself; intake decodes some elements before the script runs."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_file_meta_info
    from pynetdicom.dsutils import encode as pn_encode

    from tests.dicom_factory import make_dataset

    ds = make_dataset(StudyInstanceUID="1.2.3.4.5", PatientComments="Project: none")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    meta.TransferSyntaxUID, meta.ImplementationClassUID = ImplicitVRLittleEndian, "1.2.826.0.1.3680043.9.3811.3"
    meta.ImplementationVersionName = "PYNETDICOM_304"
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta)
    raw = fp.getvalue() + pn_encode(ds, True, True)
    expected, got = _both(raw)
    assert got == expected


@pytest.mark.filterwarnings("ignore")
def test_decoded_text_elements_are_written_as_pydicom_writes_them():
    """dicomwrite writes a decoded plain text value (what a script sets: UIDs, names, labels) itself; the
    bytes are pydicom's write_data_element's for every VR, value shape, character set and encoding."""
    import random

    from pydicom.dataelem import DataElement
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_data_element

    from prearchive.services import dicomwrite

    rng = random.Random(11)
    tags = {"UI": 0x00080018, "CS": 0x00080060, "AE": 0x00080054, "AS": 0x00101010, "LO": 0x00081030,
            "SH": 0x00081010, "LT": 0x00104000, "ST": 0x00080081, "UT": 0x0040A160, "UC": 0x00080119,
            "PN": 0x00100010, "DA": 0x00080020, "IS": 0x00200013}
    values = ["", "a", "ab", "1.2.3", "Doe^Jane", "A^B=C^D", "P1 ", " x", "é", "a\\b", "x" * 70001]
    values += ["".join(rng.choice("ab ^=.\\1é") for _ in range(rng.randrange(1, 9))) for _ in range(40)]
    charsets = ["iso8859", "ISO_IR 100", "ISO_IR 192", ["", "ISO 2022 IR 87"], "ISO 2022 IR 13", "GB18030"]
    fast = 0
    for vr, tag in tags.items():
        for value in values + [["a", "b"], ["1.2", "3.4"]]:
            try:
                elem = DataElement(tag, vr, value)
            except Exception:  # noqa: BLE001 - pydicom refuses the value for this VR
                continue
            for charset in charsets:
                for implicit in (False, True):
                    expected = DicomBytesIO()
                    expected.is_implicit_VR, expected.is_little_endian = implicit, True
                    try:
                        write_data_element(expected, elem, charset)
                    except Exception:  # noqa: BLE001 - pydicom cannot write it: neither do we
                        continue
                    fast += dicomwrite._text_value_bytes(elem, charset) is not None
                    assert dicomwrite._element_bytes(tag, elem, implicit, charset) == expected.getvalue(), \
                        (vr, value, charset, implicit)
    assert fast > 1000
