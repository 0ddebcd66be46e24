"""Helpers for the review/archive tests: sessions taken in through intake and built by the builder."""
from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from pydicom import dcmread
from pydicom.uid import generate_uid

from tests.dicom_factory import make_dataset, write_dataset

PROJECT_SCRIPT = """version "6.1"
(0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
(0008,103E) := format["{0} {1}", modalityLabel, (0008,103E)]
-(0010,0030)
-(0010,1040)
-(0008,0080)
"""
# Tags the project script above removes or replaces: none of their original values may survive.
PHI = {"PatientBirthDate": "19700101", "PatientAddress": "1 Main St", "InstitutionName": "General Hospital",
       "PatientName": "Doe^Jane", "PatientID": "PID0001"}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def incoming(ds) -> Path:
    tmp = Path(str(settings.UPLOAD_TMP_ROOT)) / f"in-{uuid.uuid4().hex}.dcm"
    write_dataset(ds, tmp)
    return tmp


def send_study(*, project: str | None, subject: str = "SUBJ1", label: str = "SESS1",
               series=((1, "MR", 3),), study_uid: str | None = None, series_uids: dict | None = None,
               rows: int = 8, **tags) -> str:
    """Take a study in through intake with XNAT's request parameters. Returns the StudyInstanceUID."""
    from prearchive.services.intake import dicom_file_receive

    study_uid = study_uid or generate_uid()
    params = {"SUBJECT_ID": subject, "EXPT_LABEL": label}
    if project:
        params["PROJECT_ID"] = project
    values = {"PatientAddress": PHI["PatientAddress"], "InstitutionName": PHI["InstitutionName"]}
    values.update(tags)
    for number, modality, count in series:
        series_uid = (series_uids or {}).get(number) or generate_uid()
        for i in range(1, count + 1):
            ds = make_dataset(modality=modality, StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid,
                              SeriesNumber=number, InstanceNumber=i, rows=rows, columns=rows, **values)
            result = dicom_file_receive(path=incoming(ds), source="test", params=params)
            assert result.ok, result.reason
    return study_uid


def build(session_id: int) -> str:
    from prearchive.services.builder import session_build
    from prearchive.models import PrearchiveSession

    S = PrearchiveSession.Status
    return session_build(session_id=session_id, expected=(S.RECEIVING, S.QUEUED_BUILDING))


def ready_session(**kwargs):
    """Send and build a study; the READY PrearchiveSession."""
    from prearchive.models import PrearchiveSession

    study_uid = send_study(**kwargs)
    session = PrearchiveSession.objects.filter(tag=study_uid).order_by("-pk").first()
    status = build(session.pk)
    session.refresh_from_db()
    assert session.status == PrearchiveSession.Status.READY, (status, session.error_message)
    return session


def archived_files(project: str, label: str) -> list[Path]:
    """The DICOM files of an archived session (not the scans' catalogs)."""
    base = Path(settings.ARCHIVE_ROOT) / project / "arc001" / label / "SCANS"
    return sorted(p for p in base.rglob("*") if p.is_file() and not p.name.endswith("_catalog.xml"))


def read_all(project: str, label: str):
    return [dcmread(p) for p in archived_files(project, label)]


@pytest.fixture
def scripted_project(project, site):
    project.anon_script = PROJECT_SCRIPT
    project.anon_script_enabled = True
    project.save()
    return project
