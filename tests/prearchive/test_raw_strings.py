"""headers.raw_strings reads plain values straight from their raw bytes: whenever it answers, its answer is
what pydicom's decoding gives (str() of each value); it declines (None) what only pydicom can decode. The
stored file name (filenames.stored_file_name, on every file intake stores) is the same either way."""
from __future__ import annotations

import random

import pytest
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from prearchive.services.filenames import stored_file_name
from prearchive.services.headers import raw_strings

KEYWORDS = {  # one keyword per VR family raw_strings knows, and some it leaves to pydicom
    "SH": "StationName", "LO": "SeriesDescription", "CS": "Modality", "AS": "PatientAge", "DA": "StudyDate",
    "TM": "StudyTime", "DT": "AcquisitionDateTime", "LT": "AdditionalPatientHistory", "ST": "InstitutionAddress",
    "UT": "TextValue", "UI": "SOPInstanceUID", "IS": "InstanceNumber", "DS": "SliceThickness", "PN": "PatientName",
    "AE": "RetrieveAETitle", "US": "Rows",
}
PLAIN = {  # values raw_strings must answer for itself (the hot path: no pydicom decoding)
    "SH": [b"MR1 ", b"A\\B "], "LO": [b"T1 MPRAGE", b" X  \x00"], "CS": [b"MR", b"ORIGINAL\\PRIMARY "],
    "DA": [b"20240115"], "TM": [b"101500.25 "], "UI": [b"1.2.840.10008.5.1.4.1.1.4\x00", b"1.2.3"],
    "IS": [b"12", b" 7 ", b"+12", b"012 ", b"1\\2", b"975330000000"], "LT": [b"Project:P Subject:S "],
}
ALPHABET = b"0123456789.+-eE ABCxyz^=\\\x00\t\x1b\xe9"


def _dataset(vr: str, raw: bytes, *, explicit: bool = True) -> Dataset:
    ds = Dataset()
    tag = Tag(KEYWORDS[vr])
    ds._dict[tag] = RawDataElement(tag, vr if explicit else None, len(raw), raw, 0, not explicit, True)
    return ds


def _pydicom_strings(ds: Dataset, keyword: str) -> list[str]:
    value = ds.get(keyword)
    if value is None:
        return [""]
    if isinstance(value, MultiValue):
        return [str(v) for v in value]
    return [str(value)]


def _cases():
    rng = random.Random(17)
    for vr in KEYWORDS:
        for raw in PLAIN.get(vr, []):
            yield vr, raw
        for _ in range(60):
            yield vr, bytes(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 12)))


@pytest.mark.filterwarnings("ignore")
def test_raw_strings_agrees_with_pydicom_whenever_it_answers():
    answered = 0
    for vr, raw in _cases():
        for explicit in (True, False):
            fast = raw_strings(_dataset(vr, raw, explicit=explicit), KEYWORDS[vr])
            if fast is None:
                continue
            answered += 1
            try:
                expected = _pydicom_strings(_dataset(vr, raw, explicit=explicit), KEYWORDS[vr])
            except Exception:  # noqa: BLE001 - pydicom cannot decode it: raw_strings must have declined
                pytest.fail(f"raw_strings answered {fast!r} for {vr} {raw!r}, which pydicom cannot decode")
            assert fast == expected, (vr, raw, explicit)
    assert answered > 300
    for vr, values in PLAIN.items():  # the common values never go to pydicom
        for raw in values:
            assert raw_strings(_dataset(vr, raw), KEYWORDS[vr]) is not None, (vr, raw)


def test_raw_strings_declines_what_only_pydicom_decodes():
    assert raw_strings(Dataset(), "StationName") == []
    assert raw_strings(_dataset("PN", b"Doe^Jane"), "PatientName") is None
    assert raw_strings(_dataset("DS", b"1.5"), "SliceThickness") is None
    assert raw_strings(_dataset("IS", b"1e400"), "InstanceNumber") is None
    assert raw_strings(_dataset("LO", b"\x1b$B"), "SeriesDescription") is None
    ds = _dataset("LO", b"T1")
    ds.SeriesDescription  # noqa: B018 - decoded now
    assert raw_strings(ds, "SeriesDescription") is None
    ds = Dataset()  # a VR other than the dictionary's (UN in an explicit file)
    tag = Tag("SeriesDescription")
    ds._dict[tag] = RawDataElement(tag, "UN", 2, b"T1", 0, False, True)
    assert raw_strings(ds, "SeriesDescription") is None


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("template", [
    "${StudyInstanceUID}-${SeriesNumber}-${InstanceNumber}-${HashSOPClassUIDWithSOPInstanceUID}",
    "${Modality}_${ImageType}_${SeriesDescription}_${StudyDate}_${PatientName}_${InstanceNumber}",
])
def test_stored_file_name_is_the_same_from_raw_bytes_and_decoded_values(template):
    def raw_dataset(values: dict[str, tuple[str, bytes]]) -> Dataset:
        ds = Dataset()
        for keyword, (vr, raw) in values.items():
            tag = Tag(keyword)
            ds._dict[tag] = RawDataElement(tag, vr, len(raw), raw, 0, False, True)
        return ds

    values = {"StudyInstanceUID": ("UI", b"1.2.3.4\x00"), "SeriesNumber": ("IS", b"3 "),
              "InstanceNumber": ("IS", b"0012"), "SOPClassUID": ("UI", b"1.2.840.10008.5.1.4.1.1.4\x00"),
              "SOPInstanceUID": ("UI", b"1.2.3.4.5.6"), "Modality": ("CS", b"MR"),
              "ImageType": ("CS", b"ORIGINAL\\PRIMARY"), "SeriesDescription": ("LO", b"T1 axial "),
              "StudyDate": ("DA", b"20240115"), "PatientName": ("PN", b"Doe^Jane ")}
    fast = stored_file_name(raw_dataset(values), template=template, sop_instance_uid="1.2.3.4.5.6")
    decoded = raw_dataset(values)
    for elem in decoded:  # iterating decodes every element: the name then comes from pydicom's values
        pass
    assert all(type(e).__name__ == "DataElement" for e in decoded._dict.values())
    assert stored_file_name(decoded, template=template, sop_instance_uid="1.2.3.4.5.6") == fast
    if "ImageType" in template:
        assert fast == "MR_ORIGINAL_PRIMARY_T1_axial_20240115_Doe_Jane_0012.dcm"  # values joined by '_'
    else:
        assert fast.startswith("1.2.3.4-3-0012-") and len(fast) == len("1.2.3.4-3-0012-") + 12 + 4


@pytest.mark.filterwarnings("ignore")
def test_instance_number_and_frames_are_the_same_from_raw_bytes_and_decoded_values():
    from prearchive.services.headers import frames, int_or_none

    rng = random.Random(5)
    values = [b"", b" ", b"7", b" 7 ", b"+12", b"0", b"-3", b"1\\2", b"2147483648", b"1.5", b"1e400", b"abc"]
    values += [bytes(rng.choice(b"0123456789 +-\\.") for _ in range(rng.randrange(1, 8))) for _ in range(150)]
    fast_paths = 0
    for raw in values:
        for keyword in ("InstanceNumber", "NumberOfFrames"):
            ds = Dataset()
            tag = Tag(keyword)
            ds._dict[tag] = RawDataElement(tag, "IS", len(raw), raw, 0, False, True)
            fast_paths += raw_strings(ds, keyword) is not None
            got = (int_or_none(ds, keyword), frames(ds) if keyword == "NumberOfFrames" else None)
            try:
                ds[tag]  # decoded: the pydicom path
            except Exception:  # noqa: BLE001 - pydicom cannot decode it: both read it as unknown
                assert got[0] is None and got[1] in (None, 1), raw
                continue
            assert got == (int_or_none(ds, keyword), frames(ds) if keyword == "NumberOfFrames" else None), raw
    assert fast_paths > 100
