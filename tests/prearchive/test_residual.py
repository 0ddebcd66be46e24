"""The residual-PHI check (issue 14): keyed hashes of the identifying values the files arrived with, compared
with every text, name, date and UID element of the output (sequence items and private elements included)."""
from __future__ import annotations

import pytest
from django.test import Client
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from prearchive.models import PhiFingerprint, PrearchiveSession, ResidualPhi
from prearchive.services.archive import session_archive, session_archive_request
from prearchive.services.builder import session_build
from prearchive.services.residual import ResidualCheck, fingerprints_of, session_residual_check
from tests.dicom_factory import make_dataset
from xnatlite.models import ImageSession, Project

from .conftest import receive

pytestmark = pytest.mark.django_db(transaction=True)
S = PrearchiveSession.Status
PATIENT_ID = "ZZRESID0042"
# Seed 004: the site-wide script, and the project script (its makeSessionLabel line is for the uploader only).
SEED_004_SITE = """- (0010,0030) //Remove Patient Birth Date
- (0010,1000) //Remove Other Patient IDs
- (0010,1001) //Remove Other Patient Names
- (0010,1005) //Remove Patient Birth Name
- (0010,1040) //Remove Patient Address
(0012,0063) := "My XNAT sitewide anon script v01"
(0020,000D) := hashUID[(0020,000D)]     // Study Instance UID
"""
SEED_004_PROJECT = """(0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
"""
# Weak: replaces the top-level name and ID, forgets the copies in a private element and a sequence item.
WEAK_PROJECT = """version "6.1"
(0010,0010) := subject
(0010,0020) := session
-(0010,0030)
"""


def _files(count=2, **tags):
    study, series = generate_uid(), generate_uid()
    out = []
    for i in range(count):
        ds = make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=3, InstanceNumber=i + 1,
                          PatientName="Zzresname^Zzgiven", PatientID=PATIENT_ID, PatientBirthDate="19030405", **tags)
        block = ds.private_block(0x0019, "ZZVENDOR", create=True)
        block.add_new(0x10, "LO", PATIENT_ID)
        item = Dataset()
        item.PatientID = PATIENT_ID
        item.RequestedProcedureID = "RP1"
        ds.RequestAttributesSequence = [item]
        out.append(ds)
    return out


def _ready(site, files, params):
    for ds in files:
        assert receive(ds, params=params).status == "stored"
    session = PrearchiveSession.objects.get(name=params["EXPT_LABEL"])
    PrearchiveSession.objects.filter(pk=session.pk).update(status=S.QUEUED_BUILDING)
    assert session_build(session_id=session.pk) == S.READY
    return PrearchiveSession.objects.get(pk=session.pk)


def _project_script(text):
    Project.objects.filter(pk="PROJ1").update(anon_script=text, anon_script_enabled=True)


def _site_script(site, text):
    site.enable_sitewide_anonymization_script = bool(text)
    site.sitewide_anonymization_script = text
    site.save()


PARAMS = {"PROJECT_ID": "PROJ1", "SUBJECT_ID": "SUBJ1", "EXPT_LABEL": "SESS1"}
EXPECTED = {"residual PHI: (0019,1010) still holds the original Patient ID (scan 3)",
            "residual PHI: (0040,0275) item 1 (0010,0020) still holds the original Patient ID (scan 3)"}


def test_a_weak_project_script_leaves_the_patient_id_in_a_private_element_and_a_sequence_item(
        site, project, admin_user):
    _site_script(site, "")
    _project_script(WEAK_PROJECT)
    session = _ready(site, _files(), PARAMS)
    assert PhiFingerprint.objects.filter(session=session).exists()
    assert PATIENT_ID not in "".join(PhiFingerprint.objects.values_list("digest", flat=True))
    session_archive_request(session=session, actor="admin")
    assert session_archive(session_id=session.pk) == "archived"
    record = ImageSession.objects.get(label="SESS1")
    found = {f.message for f in ResidualPhi.objects.filter(image_session=record)}
    assert found == EXPECTED
    assert all(f.files == 2 for f in ResidualPhi.objects.filter(image_session=record))
    client = Client()
    client.force_login(admin_user)
    answer = client.get("/data/archive/projects/PROJ1/subjects/SUBJ1/experiments/SESS1?format=json").json()
    assert set(answer["items"][0]["residual_phi"]) == EXPECTED
    page = client.get("/archive/PROJ1/sessions/SESS1/").content.decode()
    assert "residual PHI: (0019,1010) still holds the original Patient ID" in page


def test_the_site_setting_refuses_to_archive_a_session_with_residual_phi(site, project):
    _site_script(site, "")
    site.residual_phi_refuse_archive = True
    site.save()
    _project_script(WEAK_PROJECT)
    session = _ready(site, _files(), PARAMS)
    session_archive_request(session=session, actor="admin")
    assert session_archive(session_id=session.pk) == "error"
    session.refresh_from_db()
    assert session.status == S.ERROR
    assert "residual PHI: (0019,1010) still holds the original Patient ID" in session.error_message
    assert not ImageSession.objects.exists()
    assert PATIENT_ID not in session.error_message


def test_nothing_is_reported_for_the_seed_scripts_output(site, project):
    _site_script(site, SEED_004_SITE)
    _project_script(SEED_004_PROJECT)
    study, series = generate_uid(), generate_uid()
    files = [make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=1, InstanceNumber=i + 1,
                          PatientName="Zzresname^Zzgiven", PatientID=PATIENT_ID, PatientBirthDate="19030405",
                          OtherPatientIDs="ZZOTHER9", PatientAddress="1 Zzstreet") for i in range(3)]
    session = _ready(site, files, PARAMS)
    assert session_residual_check(session_id=session.pk) == []
    session_archive_request(session=session, actor="admin")
    assert session_archive(session_id=session.pk) == "archived"
    assert not ResidualPhi.objects.exists()


def test_on_demand_for_a_prearchive_session_with_a_label_equal_to_the_patient_id(site, project, admin_user):
    _site_script(site, 'version "6.1"\n(0010,0010) := subject\n')  # leaves the ID where it is
    session = _ready(site, _files(1), dict(PARAMS, EXPT_LABEL=PATIENT_ID))
    client = Client()
    client.force_login(admin_user)
    response = client.post(f"/prearchive/{session.pk}/action", {"action": "check_phi"})
    assert response.status_code == 302
    messages = {f.message for f in ResidualPhi.objects.filter(session=session)}
    assert "residual PHI: (0010,0020) still holds the original Patient ID (scan 3)" in messages
    assert "residual PHI: the session label still holds the original Patient ID" in messages
    assert EXPECTED <= messages
    assert "(0010,0010)" not in " ".join(messages)  # the script replaced the name
    page = client.get(f"/prearchive/{session.pk}/").content.decode()
    assert "residual PHI: (0010,0020) still holds the original Patient ID" in page
    rest = client.get(session.uri + "?format=json").json()["ResultSet"]["Result"][0]
    assert "residual PHI: the session label still holds the original Patient ID" in rest["residual_phi"]


def uid_prints(ds):
    return {k: v for k, v in fingerprints_of(ds).items() if k.endswith("InstanceUID")}


def test_a_replaced_uid_that_survives_in_a_reference_is_found_a_kept_one_is_not():
    original_study = generate_uid()
    ds = make_dataset(StudyInstanceUID=original_study)
    check = ResidualCheck(uid_prints(ds))
    check.file(ds, "1")
    assert check.findings == []  # every UID kept in its own element: the site keeps them
    ref = Dataset()
    ref.ReferencedSOPInstanceUID = original_study
    ds.ReferencedStudySequence = [ref]
    ds.StudyInstanceUID = "2.25.1234"
    check = ResidualCheck(uid_prints(make_dataset(StudyInstanceUID=original_study)))
    check.file(ds, "1")
    assert [f.message for f in check.findings] == [
        "residual PHI: (0008,1110) item 1 (0008,1155) still holds the original Study Instance UID (scan 1)"]
