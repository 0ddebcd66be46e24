"""The session builder: scans, session fields, documents, conflicts, late files, auto-archive."""
from __future__ import annotations

import sys
import types
from pathlib import Path
from unittest import mock
from xml.etree import ElementTree as ET

import pytest
from django.conf import settings
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from prearchive.services.builder import session_build
from tests.dicom_factory import make_dataset

from .conftest import receive, send_study

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db
XNAT = "{http://nrg.wustl.edu/xnat}"


def build(session=None):
    session = session or PrearchiveSession.objects.get()
    PrearchiveSession.objects.filter(pk=session.pk).update(status=Status.QUEUED_BUILDING)
    status = session_build(session_id=session.pk)
    session.refresh_from_db()
    return status, session


def test_it_groups_scans_and_fills_the_document(site, project):
    send_study(series=((1, "MR", 3), (2, "MR", 2), (10, "MR", 1)),
               PatientComments="Project:PROJ1 Subject:S01 Session:S01_MR1", SeriesDescription="T1 MPRAGE",
               StudyDate="20240115", StudyTime="101500")
    status, session = build()
    assert status == Status.READY and session.status == Status.READY and session.error_message == ""
    doc = session.document
    assert [s["ID"] for s in doc["scans"]] == ["1", "2", "10"]
    assert [s["file_count"] for s in doc["scans"]] == [3, 2, 1]
    scan = doc["scans"][0]
    assert scan["series_description"] == "T1 MPRAGE" and scan["modality"] == "MR"
    assert scan["scanner"] == "MR1" and scan["scanner_manufacturer"] == "ACME"
    assert scan["xsiType"] == "xnat:mrScanData" and scan["UID"] and scan["frames"] == 3
    assert scan["startTime"] == "10:20:00" and scan["file_size"] > 0
    assert doc["xsiType"] == "xnat:mrSessionData" and doc["modality"] == "MR"
    assert (doc["subject_ID"], doc["label"], doc["project"]) == ("S01", "S01_MR1", "PROJ1")
    assert doc["date"] == "2024-01-15" and doc["time"] == "10:15:00"
    assert doc["UID"] == session.tag
    assert str(session.scan_date) == "2024-01-15" and session.file_count == 6
    xml_path = Path(str(settings.PREARCHIVE_ROOT)) / "PROJ1" / session.timestamp / "S01_MR1.xml"
    root = ET.parse(xml_path).getroot()
    assert root.tag == f"{XNAT}mrSessionData" and root.get("label") == "S01_MR1"
    assert [s.get("ID") for s in root.iter(f"{XNAT}scan")] == ["1", "2", "10"]
    assert root.find(f"{XNAT}UID").text == session.tag


def test_series_without_number_group_by_uid(site):
    study, series = generate_uid(), generate_uid()
    for _ in range(2):
        receive(make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=None))
    status, session = build()
    assert status == Status.READY
    assert [s["ID"] for s in session.document["scans"]] == [series.replace(".", "_")]


def test_duplicate_series_numbers_are_a_conflict(site):
    send_study(series=((5, "MR", 2), (5, "MR", 1)))
    status, session = build()
    assert status == Status.CONFLICT
    assert "Series number 5 is used by 2 different series" in session.error_message


def test_mixed_studies_are_a_conflict(site):
    # Two studies routed to one session by an explicit label
    for study in (generate_uid(), generate_uid()):
        receive(make_dataset(StudyInstanceUID=study), params={"EXPT_LABEL": "one"})
    sessions = PrearchiveSession.objects.all()
    assert sessions.count() == 2  # keyed by StudyInstanceUID, as XNAT
    # files of another study appended into the same session (e.g. an anonymization script remapped UIDs)
    from prearchive.models import PrearchiveFile

    a, b = sessions
    PrearchiveFile.objects.filter(session=b).update(session=a)
    status, session = build(a)
    assert status == Status.CONFLICT and "2 studies" in session.error_message


def test_a_late_file_during_the_build_leaves_it_receiving(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    session = PrearchiveSession.objects.get()
    from prearchive.services import builder

    real = builder._scans

    def scans_then_a_file_arrives(session_id):
        out = real(session_id)
        receive(make_dataset(StudyInstanceUID=study, SeriesNumber=2))
        return out

    with mock.patch.object(builder, "_scans", scans_then_a_file_arrives):
        status, session = build(session)
    assert status == Status.RECEIVING and session.status == Status.RECEIVING
    status, session = build(session)
    assert status == Status.READY and session.file_count == 2


def test_building_twice_is_a_no_op(site):
    receive(make_dataset())
    status, session = build()
    assert status == Status.READY
    assert session_build(session_id=session.pk) is None  # not QUEUED_BUILDING any more


def test_a_session_with_only_filtered_files_is_an_error(site):
    receive(make_dataset())
    session = PrearchiveSession.objects.get()
    for path in settings.PREARCHIVE_ROOT.rglob("*.dcm"):  # a file without a row would be adopted (issue 16)
        path.unlink()
    session.files.all().delete()
    PrearchiveSession.objects.filter(pk=session.pk).update(filtered_count=3)
    status, session = build(session)
    assert status == Status.ERROR and "3 filtered" in session.error_message


@pytest.mark.parametrize("code,aa,expected", [(4, None, True), (5, None, True), (0, None, False),
                                              (0, "AA:true", True), (4, "AA:false", False)])
def test_auto_archive_is_handed_to_the_archive_job(site, project, code, aa, expected):
    project.prearchive_code = code
    project.save()
    comments = "Project:PROJ1" + (f" {aa}" if aa else "")
    receive(make_dataset(PatientComments=comments))
    archive = types.ModuleType("prearchive.services.archive")
    archive.session_archive_enqueue = mock.Mock()
    with mock.patch.dict(sys.modules, {"prearchive.services.archive": archive}):
        status, session = build()
    assert status == Status.READY
    if expected:
        archive.session_archive_enqueue.assert_called_once_with(session_id=session.pk)
    else:
        archive.session_archive_enqueue.assert_not_called()


def test_unassigned_sessions_are_never_auto_archived(site):
    receive(make_dataset(PatientComments="AA:true"))
    archive = types.ModuleType("prearchive.services.archive")
    archive.session_archive_enqueue = mock.Mock()
    with mock.patch.dict(sys.modules, {"prearchive.services.archive": archive}):
        build()
    archive.session_archive_enqueue.assert_not_called()


def test_a_conflicted_session_is_not_auto_archived(site, project):
    project.prearchive_code = 4
    project.save()
    send_study(series=((5, "MR", 1), (5, "MR", 1)), PatientComments="Project:PROJ1")
    archive = types.ModuleType("prearchive.services.archive")
    archive.session_archive_enqueue = mock.Mock()
    with mock.patch.dict(sys.modules, {"prearchive.services.archive": archive}):
        status, _ = build()
    assert status == Status.CONFLICT
    archive.session_archive_enqueue.assert_not_called()
