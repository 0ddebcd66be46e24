"""Datasets from compact specs, and an independent reader for expected values (not the engine's)."""
from __future__ import annotations

import copy
import re
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

Spec = dict[str, tuple[str, Any]]
ABSENT = object()

BASE: Spec = {
    "(0008,0005)": ("CS", "ISO_IR 100"),
    "(0008,0008)": ("CS", "ORIGINAL\\PRIMARY\\M\\ND"),
    "(0008,0016)": ("UI", "1.2.840.10008.5.1.4.1.1.4"),
    "(0008,0018)": ("UI", "1.2.3.4.5.6"),
    "(0008,0020)": ("DA", "20100430"),
    "(0008,002A)": ("DT", "20100430130441.40"),
    "(0008,0030)": ("TM", "130441"),
    "(0008,0050)": ("SH", "20100430"),
    "(0008,0060)": ("CS", "MR"),
    "(0008,0070)": ("LO", "Philips Medical Systems"),
    "(0008,1030)": ("LO", "Brain Study"),
    "(0008,103E)": ("LO", "PDw_TSE"),
    "(0008,1090)": ("LO", "Achieva"),
    "(0008,1115)": ("SQ", [{"(0008,1155)": ("UI", "1.2.3.4.5")}, {"(0008,1155)": ("UI", "1.2.3.4.5.6")}]),
    "(0010,0010)": ("PN", "Doe^John"),
    "(0010,0020)": ("LO", "PID123"),
    "(0010,0030)": ("DA", "19700101"),
    "(0010,1010)": ("AS", "040Y"),
    "(0018,0026)": ("SQ", [{"(0018,0034)": ("LO", "AGENT1"), "(0010,0020)": ("LO", "NESTED1")},
                           {"(0018,0034)": ("LO", "AGENT2"),
                            "(0018,0029)": ("SQ", [{"(0010,0020)": ("LO", "DEEP")}])}]),
    "(0018,9010)": ("CS", "A"), "(0018,9011)": ("CS", "B"), "(0018,9012)": ("CS", "C"),
    "(0018,9013)": ("CS", "D"),
    "(0018,0050)": ("DS", "3.0"),
    "(0018,9087)": ("FD", 30.0),
    "(0020,000D)": ("UI", "1.3.46.670589.11.5730.5.0.1744.2010043012343685002"),
    "(0020,000E)": ("UI", "1.2.3.4.5.6.7"),
    "(0020,0011)": ("IS", "5"),
    "(0028,0010)": ("US", 4), "(0028,0011)": ("US", 4),
    "(0019,0010)": ("LO", "SIEMENS MR HEADER"),
    "(0019,100F)": ("LO", "SIEMENSVALUE"),
    "(0019,1010)": ("LO", "OTHERVALUE"),
    "(2001,0010)": ("LO", "Philips Imaging DD 001"),
    "(2001,100C)": ("CS", "N"),
    "(2001,1081)": ("IS", "1"),
    "(2001,1082)": ("IS", "2"),
    "(0029,0010)": ("LO", "SIEMENS CSA HEADER"),
    "(0029,1010)": ("OB", b"CSA1"),
    "(0029,1019)": ("OB", b"CSA2"),
}

_TAG = re.compile(r"\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)(?:\[(\d+)\])?")


def tag_of(text: str) -> int:
    m = _TAG.fullmatch(text)
    assert m, text
    return int(m.group(1) + m.group(2), 16)


def build(spec: Spec, *, file_meta: bool = True) -> Dataset:
    ds = _build(spec)
    if file_meta:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
        meta.MediaStorageSOPInstanceUID = str(ds.get("SOPInstanceUID", "1.2.3"))
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.SourceApplicationEntityTitle = "DicomBrowser"
        ds.file_meta = meta
    return ds


def _build(spec: Spec) -> Dataset:
    ds = Dataset()
    for key, (vr, value) in spec.items():
        if value is ABSENT:
            continue
        if vr == "SQ":
            value = Sequence([_build(item) for item in value])
        ds.add_new(tag_of(key), vr, copy.deepcopy(value) if vr != "SQ" else value)
    return ds


def merged(overrides: Spec | None, base: bool = True) -> Spec:
    spec = dict(BASE) if base else {}
    for k, v in (overrides or {}).items():
        spec[k] = v
    return spec


def text_of(value: Any) -> str:
    if isinstance(value, (list, MultiValue)):
        return "\\".join(text_of(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("latin-1").rstrip("\0")
    if type(value) is float:
        return str(int(value)) if value.is_integer() else repr(value)
    if value is None:
        return ""
    return str(value)


def read(ds: Dataset, path: str) -> Any:
    """Value text at ``path`` ("(gggg,eeee)[n]/(gggg,eeee)"), ABSENT if missing, a Sequence for SQ."""
    if path.startswith("meta:"):
        ds = ds.file_meta
        path = path[5:]
    parts = path.split("/")
    current = ds
    for i, part in enumerate(parts):
        m = _TAG.fullmatch(part)
        assert m, part
        tag = int(m.group(1) + m.group(2), 16)
        if tag not in current:
            return ABSENT
        elem = current[tag]
        if i == len(parts) - 1:
            if m.group(3) is not None:
                seq = elem.value
                return ABSENT if int(m.group(3)) >= len(seq) else seq[int(m.group(3))]
            return elem.value if elem.VR == "SQ" else text_of(elem.value)
        seq = elem.value
        index = int(m.group(3) or 0)
        if index >= len(seq):
            return ABSENT
        current = seq[index]
    raise AssertionError("unreachable")
