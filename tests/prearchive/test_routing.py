"""Routing through intake (reference/xnat.md §5): every pass, aliases, sanitising, Unassigned."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveSession
from tests.dicom_factory import make_dataset
from xnatlite.models import Project, ProjectAlias

from .conftest import receive

pytestmark = pytest.mark.django_db


@pytest.fixture
def projects(db):
    for pid in ("PARAM", "PCOMM", "SCOMM", "HIST", "DESC", "ACC"):
        Project.objects.create(id=pid, prearchive_code=0)
    ProjectAlias.objects.create(project_id="DESC", alias="DescAlias")


def routed(**tags):
    params = tags.pop("params", None)
    result = receive(make_dataset(**tags), params=params)
    assert result.status == "stored", result
    s = PrearchiveSession.objects.get(pk=result.session_id)
    return s.project_id, s.subject, s.name


def test_request_parameters_come_first(site, projects):
    assert routed(params={"PROJECT_ID": "PARAM", "SUBJECT_ID": "sub", "EXPT_LABEL": "ses"},
                  PatientComments="Project:PCOMM Subject:x Session:y") == ("PARAM", "sub", "ses")


def test_patient_comments_assignments(site, projects):
    assert routed(PatientComments="Project:PCOMM Subject:subj001 Session:subj001_MR1") == \
        ("PCOMM", "subj001", "subj001_MR1")


def test_study_comments_assignments(site, projects):
    assert routed(StudyComments="Project: SCOMM; Subject: s2; Session: e2") == ("SCOMM", "s2", "e2")


def test_additional_patient_history_assignments(site, projects):
    assert routed(AdditionalPatientHistory="Project:HIST,Subject:s3,Session:e3") == ("HIST", "s3", "e3")


def test_study_description_patient_name_and_id(site, projects):
    assert routed(StudyDescription="DescAlias", PatientName="Smith^J", PatientID="E 1") == \
        ("DESC", "Smith_J", "E_1")


def test_accession_number_is_the_last_project_pass(site, projects):
    assert routed(StudyDescription="nope", AccessionNumber="ACC")[0] == "ACC"


def test_no_project_is_unassigned_and_no_label_is_dicom_upload(site, projects):
    assert routed(StudyDescription="unknown", PatientID="") [0::2] == (None, "dicom_upload")


def test_a_project_the_user_may_not_upload_to_is_not_used(site, projects, outsider):
    result = receive(make_dataset(PatientComments="Project:PCOMM"), user=outsider)
    assert PrearchiveSession.objects.get(pk=result.session_id).project_id is None


def test_aa_assignment_sets_the_session_code(site, projects):
    receive(make_dataset(PatientComments="Project:PCOMM AA:true"))
    assert PrearchiveSession.objects.get().autoarchive == 4
