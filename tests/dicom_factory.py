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
