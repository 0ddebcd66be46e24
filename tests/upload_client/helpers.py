"""Archives of real DICOM sessions for the uploader client's tests."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
from pydicom.uid import generate_uid

from tests.dicom_factory import make_dataset, write_dataset

PROJECT_SCRIPT = '''version "6.1"
describe trial "Trial name"
describe internal hidden
(0008,1030) := trial
(0010,0020) := session
'''


def session_files(folder: Path, *, modality: str = "MR", series=((1, "T1 MPRAGE", 2), (2, "T2 FLAIR", 2)),
                  study_date: str = "20240115", size: int = 32, **tags) -> list[Path]:
    """One study: ``series`` of (number, description, files); pixel value = 1000 + instance*10 + x%7."""
    study_uid = generate_uid()
    paths = []
    for number, description, count in series:
        series_uid = generate_uid()
        for i in range(1, count + 1):
            ds = make_dataset(modality=modality, rows=size, columns=size, StudyInstanceUID=study_uid,
                              SeriesInstanceUID=series_uid, SeriesNumber=number, InstanceNumber=i,
                              SeriesDescription=description, StudyDate=study_date, **tags)
            ds.PixelData = pixel_values(size, i).tobytes()
            paths.append(write_dataset(ds, folder / f"{study_uid[-6:]}_{number}_{i}.dcm"))
    return paths


def pixel_values(size: int, instance: int) -> np.ndarray:
    grid = np.add.outer(np.arange(size), np.arange(size)) % 7
    return (1000 + instance * 10 + grid).astype(np.uint16)


def zip_of(paths: list[Path], dest: Path) -> Path:
    with zipfile.ZipFile(dest, "w") as zf:
        for path in paths:
            zf.write(path, f"data/{path.parent.name}/{path.name}")
    return dest
