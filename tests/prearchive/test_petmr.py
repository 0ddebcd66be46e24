"""PET: tracers offered and picked; PET-MR in XNAT's three modes, with separation and its label rules."""
from __future__ import annotations

import pytest
from pydicom.dataset import Dataset

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services.builder import session_build
from prearchive.services.petmr import unique_session_label

from .conftest import send_study

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db


def tracer(name):
    item = Dataset()
    item.Radiopharmaceutical = name
    return [item]


def send_petmr(label="S01_PETMR1", **tags):
    return send_study(series=((1, "MR", 2), (2, "PT", 3), (3, "MR", 1)),
                      PatientComments=f"Project:PROJ1 Subject:S01 Session:{label}", **tags)


def build_all():
    built = []
    for session in PrearchiveSession.objects.filter(status=Status.RECEIVING):
        PrearchiveSession.objects.filter(pk=session.pk).update(status=Status.QUEUED_BUILDING)
        built.append(session_build(session_id=session.pk))
    return built


def test_petmr_mode_makes_one_petmr_session(site, project):
    send_petmr()
    assert build_all() == [Status.READY]
    session = PrearchiveSession.objects.get()
    assert session.session_type == "xnat:petmrSessionData" and session.name == "S01_PETMR1"
    assert session.modality == "PT"


def test_pet_mode_relabels_petmr_to_pet(site, project):
    site.sitewide_pet_mr = "pet"
    site.save()
    send_petmr()
    build_all()
    session = PrearchiveSession.objects.get()
    assert session.session_type == "xnat:petSessionData" and session.name == "S01_PET1"


def test_separate_mode_splits_into_mr_and_pet_sessions(site, project, settings):
    project.pet_mr = "separate"  # the project's setting wins over the site's
    project.save()
    send_petmr()
    build_all()
    sessions = {s.name: s for s in PrearchiveSession.objects.all()}
    assert set(sessions) == {"S01_MR1", "S01_PET1"}
    mr, pet = sessions["S01_MR1"], sessions["S01_PET1"]
    assert mr.status == pet.status == Status.READY
    assert mr.session_type == "xnat:mrSessionData" and [s["ID"] for s in mr.document["scans"]] == ["1", "3"]
    assert pet.session_type == "xnat:petSessionData" and [s["ID"] for s in pet.document["scans"]] == ["2"]
    assert PrearchiveFile.objects.filter(session=pet).count() == 3
    for session in (mr, pet):
        for f in session.files.all():
            assert (settings.PREARCHIVE_ROOT / session.relative_dir / f.relative_path).is_file()
    assert mr.separated_from.endswith("/S01_PETMR1")
    assert not (settings.PREARCHIVE_ROOT / "PROJ1").joinpath(mr.separated_from.split("/")[-2], "S01_PETMR1").exists()


def test_separation_appends_suffixes_when_the_label_has_no_petmr(site, project):
    site.sitewide_pet_mr = "separate"
    site.save()
    send_petmr(label="visit1")
    build_all()
    assert set(PrearchiveSession.objects.values_list("name", flat=True)) == {"visit1_MR", "visit1_PET"}


def test_unique_label_numbers_taken_labels(site, project):
    send_study(series=((1, "MR", 1),), PatientComments="Project:PROJ1 Session:S01_MR1")
    assert unique_session_label(project_id="PROJ1", label="S01_PETMR1", modality_label="MR") == "S01_MR1_1"
    assert unique_session_label(project_id="PROJ1", label="s_petmr", modality_label="PET") == "s_pet"


def test_pet_tracer_from_the_site_list(site, project):
    send_study(series=((1, "PT", 2),), PatientComments="Project:PROJ1",
               RadiopharmaceuticalInformationSequence=tracer("fdg"))
    build_all()
    session = PrearchiveSession.objects.get()
    assert session.pet_tracer == "FDG"
    assert session.document["pet_tracers"] == ["PIB", "FDG"]


def test_the_project_tracer_list_when_enabled(site, project):
    project.pet_tracers_enabled = True
    project.pet_tracers = "NAV4694 FLORBETAPIR"
    project.save()
    send_study(series=((1, "PT", 1),), PatientComments="Project:PROJ1",
               RadiopharmaceuticalInformationSequence=tracer("Florbetapir"))
    build_all()
    session = PrearchiveSession.objects.get()
    assert session.document["pet_tracers"] == ["NAV4694", "FLORBETAPIR"] and session.pet_tracer == "FLORBETAPIR"


def test_mr_sessions_offer_no_tracers(site, project):
    send_study(series=((1, "MR", 1),))
    build_all()
    assert "pet_tracers" not in PrearchiveSession.objects.get().document
