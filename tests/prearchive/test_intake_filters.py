"""Series import filters at intake: site then project; whitelist, blacklist, modality map; counted, never stored."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from prearchive.models import IntakeRejection, PrearchiveFile, PrearchiveSession
from tests.dicom_factory import make_dataset

from .conftest import receive

pytestmark = pytest.mark.django_db


def site_filter(site, mode, text):
    site.enable_sitewide_series_import_filter = True
    site.sitewide_series_import_filter_mode = mode
    site.sitewide_series_import_filter = text
    site.save()


def files_on_disk():
    return list(Path(str(settings.PREARCHIVE_ROOT)).rglob("*.dcm"))


def test_blacklist_matches_case_insensitively(site):
    from pydicom.uid import generate_uid

    site_filter(site, "blacklist", "# localizers are not wanted\nSAG LOCALIZER\n")
    study = generate_uid()
    dropped = receive(make_dataset(SeriesDescription="Sag Localizer", StudyInstanceUID=study))
    kept = receive(make_dataset(SeriesDescription="T1 MPRAGE", StudyInstanceUID=study))
    late = receive(make_dataset(SeriesDescription="SAG LOCALIZER", StudyInstanceUID=study))
    assert (dropped.status, kept.status, late.status) == ("filtered", "stored", "filtered")
    session = PrearchiveSession.objects.get()
    # Before the session existed the drop is an intake rejection; after, the session counts it.
    assert session.filtered_count == 1 and session.files.count() == 1
    assert IntakeRejection.objects.filter(reason_code="filtered").count() == 1
    assert len(files_on_disk()) == 1


def test_a_study_whose_every_series_is_filtered_leaves_no_prearchive_row(site, admin_user):
    """Issue 14 item 10 (seed 002: filtered series are not visible in the prearchive): no row, no folder,
    and the drops counted where admins see intake rejections."""
    from django.test import Client
    from pydicom.uid import generate_uid

    site_filter(site, "blacklist", "LOCALIZER\nSCOUT\n")
    study = generate_uid()
    for description in ("localizer", "scout", "Localizer"):
        assert receive(make_dataset(SeriesDescription=description, StudyInstanceUID=study)).status == "filtered"
    assert not PrearchiveSession.objects.exists()
    assert not files_on_disk()
    assert IntakeRejection.objects.filter(reason_code="filtered", study_instance_uid=study).count() == 3
    client = Client()
    client.force_login(admin_user)
    page = client.get("/admin/prearchive/intakerejection/?reason_code=filtered").content.decode()
    assert "Filtered by a series import filter" in page


def test_whitelist_keeps_only_matching_series(site):
    site_filter(site, "whitelist", "^T1\n^T2")
    assert receive(make_dataset(SeriesDescription="t1 mprage")).status == "stored"
    assert receive(make_dataset(SeriesDescription="DTI")).status == "filtered"


def test_header_sections_and_exists(site):
    site_filter(site, "blacklist", "[BurnedInAnnotation]\nYES\n[(0008,0008)]\nSECONDARY")
    assert receive(make_dataset(BurnedInAnnotation="YES")).status == "filtered"
    assert receive(make_dataset(ImageType=["DERIVED", "SECONDARY"])).status == "filtered"
    assert receive(make_dataset(BurnedInAnnotation="NO")).status == "stored"


def test_whitelist_not_exists(site):
    site_filter(site, "whitelist", "[BurnedInAnnotation]\n!EXISTS")
    assert receive(make_dataset()).status == "stored"
    assert receive(make_dataset(BurnedInAnnotation="NO")).status == "filtered"


def test_the_project_filter_applies_after_the_site_filter(site, project):
    site_filter(site, "blacklist", "SCOUT")
    project.series_import_filter_enabled = True
    project.series_import_filter_mode = "blacklist"
    project.series_import_filter = "DTI"
    project.save()
    tags = {"PatientComments": "Project:PROJ1"}
    assert receive(make_dataset(SeriesDescription="scout", **tags)).status == "filtered"
    assert receive(make_dataset(SeriesDescription="DTI 64dir", **tags)).status == "filtered"
    assert receive(make_dataset(SeriesDescription="T1", **tags)).status == "stored"
    # other projects are not affected by PROJ1's filter
    assert receive(make_dataset(SeriesDescription="DTI")).status == "stored"


def test_a_disabled_project_filter_is_ignored(site, project):
    project.series_import_filter_enabled = False
    project.series_import_filter = "DTI"
    project.save()
    assert receive(make_dataset(SeriesDescription="DTI", PatientComments="Project:PROJ1")).status == "stored"


MODALITY_MAP = (
    "exclude:/^yes$/i.test('#BurnedInAnnotation#')\n"
    "PT:'#Modality#' == 'PT' || ('#Modality#' == 'MR' && '#SeriesDescription#' == 'PET Data')\n"
    "MR:'#Modality#' != 'PT' && !('#Modality#' == 'MR' && '#SeriesDescription#' == 'PET Data')\n"
)


def test_the_modality_map_of_the_reference(site):
    site_filter(site, "modalityMap", MODALITY_MAP)
    assert receive(make_dataset(BurnedInAnnotation="YES")).status == "filtered"
    pet = receive(make_dataset(modality="MR", SeriesDescription="PET Data"))
    assert pet.status == "stored"
    assert PrearchiveFile.objects.get(sop_instance_uid=pet.sop_instance_uid).modality == "PT"
    mr = receive(make_dataset(modality="MR", SeriesDescription="T1"))
    assert PrearchiveFile.objects.get(sop_instance_uid=mr.sop_instance_uid).modality == "MR"


def test_a_runaway_expression_is_refused_without_hanging(site):
    import time

    site_filter(site, "modalityMap", "exclude: (function(){ while(true){} })()\nMR: true\n")
    started = time.monotonic()
    result = receive(make_dataset())
    assert time.monotonic() - started < 10
    assert result.status == "filtered"
    assert not files_on_disk()


def test_intake_logs_no_uid_of_a_stored_filtered_or_rejected_file(site, caplog):
    """With the site script off the original UIDs are the patient's: intake's log lines name codes, session
    numbers and projects, never a study or instance UID (they used to name both)."""
    import logging

    from pydicom.uid import generate_uid

    caplog.set_level(logging.DEBUG)
    site_filter(site, "blacklist", "LOCALIZER\n")
    study = generate_uid()
    files = [make_dataset(StudyInstanceUID=study, SeriesDescription="T1"),
             make_dataset(StudyInstanceUID=study, SeriesDescription="localizer"),
             make_dataset(StudyInstanceUID=study, PatientComments="Session:" + "x" * 100)]
    results = [receive(ds) for ds in files]
    assert [r.status for r in results] == ["stored", "filtered", "rejected"]
    assert "prearchive session" in caplog.text and "intake filtered" in caplog.text
    assert "intake rejected" in caplog.text
    for uid in [study] + [str(ds.SOPInstanceUID) for ds in files]:
        assert uid not in caplog.text
