"""Helpers for prearchive tests: real DICOM files written with pydicom, fed through intake."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from tests.dicom_factory import make_dataset, write_dataset


@pytest.fixture
def anon(site):
    """Sets the site-wide anonymization script (and turns it on)."""
    def set_script(text):
        site.enable_sitewide_anonymization_script = True
        site.sitewide_anonymization_script = text
        site.save()
    return set_script


def incoming(ds_or_path) -> Path:
    """A temporary file in UPLOAD_TMP_ROOT, as a route hands it to intake."""
    tmp = Path(str(settings.UPLOAD_TMP_ROOT)) / f"in-{uuid.uuid4().hex}.dcm"
    if isinstance(ds_or_path, (str, Path)):
        shutil.copyfile(ds_or_path, tmp)
    else:
        write_dataset(ds_or_path, tmp)
    return tmp


def receive(ds_or_path, **kwargs):
    from prearchive.services.intake import dicom_file_receive

    kwargs.setdefault("source", "test")
    return dicom_file_receive(path=incoming(ds_or_path), **kwargs)


def send_study(*, series=((1, "MR", 3),), study_uid=None, **tags):
    """Send one study: ``series`` is a list of (SeriesNumber, modality, count). Returns the results."""
    from pydicom.uid import generate_uid

    study_uid = study_uid or generate_uid()
    results = []
    for number, modality, count in series:
        series_uid = generate_uid()
        for i in range(1, count + 1):
            ds = make_dataset(modality=modality, StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid,
                              SeriesNumber=number, InstanceNumber=i, **tags)
            results.append(receive(ds))
    return results
