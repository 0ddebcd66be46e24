"""routing._text reads undecoded ASCII text straight from the raw bytes: the same string pydicom's decoding
gives, for every value shape (padding, NULs, backslashes, empty, non-ASCII falls back)."""
from __future__ import annotations

import io
import random

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid

from prearchive import routing

TAGS = (routing.PATIENT_COMMENTS, routing.STUDY_COMMENTS, routing.ADDITIONAL_PATIENT_HISTORY,
        routing.STUDY_DESCRIPTION, routing.ACCESSION_NUMBER, routing.PATIENT_ID, routing.PATIENT_NAME)
PIECES = ["", " ", "  ", "\x00", "\\", "Project:", " P1", "Subject: S-1", ";", ",", "a", "Zz9", "\t", "é", "\x1b$B",
          "^", "=", "Doe^Jane"]


def _values(rng: random.Random) -> list[bytes]:
    out = [b"", b" ", b"\x00", b"\\", b"a\\b ", b" a \\ b\x00", b"Project:P1 Session:S1 "]
    for _ in range(150):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 8)))
        out.append(text.encode("latin-1", "replace"))
    return out


def _file_bytes(ds: Dataset, implicit: bool = False) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _encoded(values: dict[int, str]) -> bytes:
    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    for tag, value in values.items():
        ds.add_new(tag, pydicom.datadict.dictionary_VR(tag), value)
    return _file_bytes(ds)


@pytest.mark.parametrize("implicit", [False, True])
def test_raw_text_is_what_pydicom_decodes(implicit):
    rng = random.Random(4)
    for value in _values(rng):
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
        for tag in TAGS:
            vr = pydicom.datadict.dictionary_VR(tag)
            ds.add_new(tag, vr, value.decode("latin-1"))
        data = _file_bytes(ds, implicit)
        fast = pydicom.dcmread(io.BytesIO(data))
        slow = pydicom.dcmread(io.BytesIO(data))
        for tag in TAGS:
            got = routing._text(fast, tag)
            slow._dict[tag] = slow[tag]  # decoded by pydicom: the general path
            assert got == routing._text(slow, tag), (hex(tag), value)


def test_plain_values_of_every_routing_tag_skip_pydicom():
    """The common values (ASCII, a person name without component groups) are read without decoding."""
    ds = pydicom.dcmread(io.BytesIO(_encoded({tag: "Doe^Jane" if tag == routing.PATIENT_NAME else "Project:P1 "
                                              for tag in TAGS})))
    for tag in TAGS:
        assert routing._raw_text(ds, tag) is not None, hex(tag)
    assert routing._raw_text(ds, routing.PATIENT_NAME) == "Doe^Jane"
