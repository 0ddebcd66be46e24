"""Real DICOM files for tests, built in code with pydicom."""
from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, PositronEmissionTomographyImageStorage, generate_uid

SOP_CLASSES = {
    "MR": MRImageStorage,
    "PT": PositronEmissionTomographyImageStorage,
    "CT": "1.2.840.10008.5.1.4.1.1.2",
    "SC": "1.2.840.10008.5.1.4.1.1.7",
    "OT": "1.2.840.10008.5.1.4.1.1.7",
}
_counter = itertools.count(1)


def make_dataset(*, modality: str = "MR", rows: int = 8, columns: int = 8, pixels: bool = True,
                 **tags: Any) -> Dataset:
    """A complete image instance. Keyword arguments are DICOM keywords (PatientName=..., SeriesNumber=...)."""
    ds = Dataset()
    ds.SOPClassUID = SOP_CLASSES.get(modality, MRImageStorage)
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = tags.pop("StudyInstanceUID", None) or generate_uid()
    ds.SeriesInstanceUID = tags.pop("SeriesInstanceUID", None) or generate_uid()
    ds.Modality = modality
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.StudyDate = "20240115"
    ds.StudyTime = "101500"
    ds.SeriesDate = "20240115"
    ds.SeriesTime = "102000"
    ds.StudyDescription = "Study"
    ds.SeriesDescription = "T1 MPRAGE"
    ds.SeriesNumber = 1
    ds.InstanceNumber = next(_counter)
    ds.AccessionNumber = ""
    ds.Manufacturer = "ACME"
    ds.ManufacturerModelName = "Imager 3T"
    ds.StationName = "MR1"
    if pixels:
        ds.Rows = rows
        ds.Columns = columns
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = 16
        ds.BitsStored = 12
        ds.HighBit = 11
        ds.PixelRepresentation = 0
        ds.PixelData = (np.arange(rows * columns, dtype=np.uint16) % 4096).tobytes()
    for key, value in tags.items():
        if value is None:
            if key in ds:
                delattr(ds, key)
        else:
            setattr(ds, key, value)
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def write_dataset(ds: Dataset, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_dicom(path: Path, **kwargs: Any) -> Path:
    return write_dataset(make_dataset(**kwargs), path)


def write_session(folder: Path, *, series: int = 2, per_series: int = 3, modality: str = "MR",
                  **tags: Any) -> list[Path]:
    """Files of one study: ``series`` series of ``per_series`` instances each."""
    study_uid = tags.pop("StudyInstanceUID", None) or generate_uid()
    paths = []
    for s in range(1, series + 1):
        series_uid = generate_uid()
        for i in range(1, per_series + 1):
            ds = make_dataset(modality=modality, StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid,
                              SeriesNumber=s, InstanceNumber=i, **tags)
            paths.append(write_dataset(ds, Path(folder) / f"s{s}" / f"i{i}.dcm"))
    return paths


# GE ultrasound files carry a private sequence after the pixel data, in group 7FE1 (it sorts after 7FE0).
GE_MOVIE_CREATOR = "GEMS_Ultrasound_MovieGroup_001"
TAIL_PHI = {"PatientName": "Tail^Secret", "PatientID": "TAILMRN77", "PatientBirthDate": "19611231"}


def encapsulated(ds: Dataset, transfer_syntax: str, *, frames: int = 2) -> Dataset:
    """``ds`` with encapsulated pixel data in ``transfer_syntax`` (bytes that look like the codec's; they
    need not decode: intake never decodes pixels)."""
    from pydicom.encaps import encapsulate

    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = encapsulate([b"\xff\xd8" + bytes([i]) * 37 + b"\xff\xd9" for i in range(frames)])
    ds["PixelData"].VR = "OB"
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    return ds


def add_tail(ds: Dataset, kind: str) -> Dataset:
    """Elements after the pixel data: ``padding`` (FFFC,FFFC), ``signature`` (FFFA,FFFA), or GE's private
    movie group sequence holding patient data, ``ge`` (undefined length: the file ends with a sequence
    delimiter, as encapsulated pixel data does) or ``ge_defined``."""
    from pydicom.sequence import Sequence

    if kind == "padding":
        ds.add_new(0xFFFCFFFC, "OB", b"\x00" * 16)
    elif kind == "signature":
        item = Dataset()
        item.MACIDNumber = 1
        item.DigitalSignatureUID = generate_uid()
        item.add_new(0x04000105, "DT", "20240115101500")  # DigitalSignatureDateTime
        ds.add_new(0xFFFAFFFA, "SQ", Sequence([item]))
    elif kind in ("ge", "ge_defined"):
        item = Dataset()
        for keyword, value in TAIL_PHI.items():
            setattr(item, keyword, value)
        ds.add_new(0x7FE10010, "LO", GE_MOVIE_CREATOR)
        ds.add_new(0x7FE11001, "SQ", Sequence([item]))
        ds[0x7FE11001].is_undefined_length = kind == "ge"
        item.is_undefined_length_sequence_item = kind == "ge"
    elif kind != "none":
        raise ValueError(kind)
    return ds


def dataset_bytes(ds: Dataset) -> bytes:
    import io

    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def deflated_bomb(path: Path, *, inflated: int = 1024**3) -> Path:
    """A DICOM file in Deflated Explicit VR Little Endian of about 1 MB whose dataset inflates to
    ``inflated`` bytes (a pixel data element of zeros), written streaming (never held in memory)."""
    import struct
    import zlib

    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset as encode_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = make_dataset(pixels=False, PatientName="Bomb^Deflate")
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    head = DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    head.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(head, ds.file_meta)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    encode_dataset(body, ds)
    pixels = inflated - len(body.getvalue()) - 12
    pixels -= pixels % 2
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    chunk = bytes(16 * 1024 * 1024)
    with open(path, "wb") as out:
        out.write(head.getvalue())
        out.write(deflate.compress(body.getvalue() + struct.pack("<HH2sHL", 0x7FE0, 0x0010, b"OB", 0, pixels)))
        left = pixels
        while left:
            n = min(left, len(chunk))
            out.write(deflate.compress(chunk[:n]))
            left -= n
        out.write(deflate.flush())
    return Path(path)
