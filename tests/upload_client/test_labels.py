"""Labeling schemes and v## visit numbering (no database unless marked)."""
from __future__ import annotations

import random

import pytest

from upload.client import labels

SEED_EXPR = 'makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]'


def suggest(taken=(), subject="111", modality="MR", scheme=SEED_EXPR, **kw):
    return labels.session_label_suggest(scheme=scheme, subject=subject, modality=modality, project="P",
                                        taken=taken, **kw)


def test_v_numbering_first_visit_is_v00():
    assert suggest() == "111_v00_mr"


def test_v_numbering_next_after_existing():
    assert suggest(taken={"111_v00_mr"}) == "111_v01_mr"
    assert suggest(taken={"111_v00_mr", "111_v01_mr"}) == "111_v02_mr"


def test_v_numbering_fills_the_first_gap():
    assert suggest(taken={"111_v00_mr", "111_v02_mr", "111_v03_mr"}) == "111_v01_mr"


def test_v_numbering_counts_per_subject_and_modality():
    taken = {"111_v00_pet", "222_v00_mr", "222_v01_mr"}
    assert suggest(taken=taken) == "111_v00_mr"
    assert suggest(taken=taken, modality="PET") == "111_v01_pet"
    assert suggest(taken=taken, subject="222") == "222_v02_mr"


def test_v_numbering_width_follows_the_hashes():
    assert labels.indexed_label_next(pattern="S_v###", taken={"S_v000"}) == "S_v001"
    assert labels.indexed_label_next(pattern="S_v#", taken={f"S_v{i}" for i in range(10)}) == "S_v10"


def test_script_expression_used_when_scheme_is_auto():
    script = f"(0008,1030) := project\nsession := {SEED_EXPR}\n"
    expr = labels.script_session_expression([script])
    assert expr == SEED_EXPR
    assert suggest(scheme="auto", script_expression=expr, taken={"111_v00_mr"}) == "111_v01_mr"
    assert labels.script_with_label(script, "111_v01_mr").endswith('session := "111_v01_mr"\n')


def test_commented_make_session_label_is_ignored():
    assert labels.script_session_expression([f"// session := {SEED_EXPR}\n"]) is None


def test_auto_session_scheme_is_subject_and_modality_made_unique():
    assert suggest(scheme="auto") == "111_MR"
    assert suggest(scheme="auto", taken={"111_MR"}) == "111_MR_1"
    assert suggest(scheme="auto", taken={"111_MR", "111_MR_1"}) == "111_MR_2"
    assert suggest(scheme="", subject="") == ""


def test_dicom_session_schemes():
    assert suggest(scheme="dicom_accession_num", accession="ACC 7") == "ACC_7"
    assert suggest(scheme="dicom_patient_id", patient_id="P-1", taken={"P-1"}) == "P-1_1"
    assert suggest(scheme="dicom_accession_num", accession="") == ""


def test_format_expression_with_a_header_tag():
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.StudyDate = "20240115"
    assert suggest(scheme='format["{0}_{1}", subject, (0008,0020)]', header=ds) == "111_20240115"


def test_bad_expression_raises_label_error():
    with pytest.raises(labels.LabelError):
        suggest(scheme="noSuchFunction[subject]")


def test_subject_schemes():
    assert labels.subject_label_suggest(scheme="manual", patient_id="X") == ""
    assert labels.subject_label_suggest(scheme="dicom_patient_id", patient_id="PID 1") == "PID_1"
    assert labels.subject_label_suggest(scheme="dicom_patient_name", patient_name="Doe^Jane") == "Doe_Jane"
    auto = labels.subject_label_suggest(scheme="auto", rng=random.Random(1), taken=set())
    assert len(auto) == 5 and auto[:2].isalpha() and auto[:2].isupper() and auto[2:].isdigit()
    taken = {auto}
    again = labels.subject_label_suggest(scheme="auto", rng=random.Random(1), taken=taken)
    assert again != auto


def test_modality_label():
    assert labels.modality_label(["CT", "PT"]) == "PET"
    assert labels.modality_label(["MR"]) == "MR"
    assert labels.modality_label([]) == "OT"


@pytest.mark.django_db
def test_visit_label_next_reads_archive_and_prearchive(project):
    from django.utils import timezone

    from prearchive.models import PrearchiveSession
    from upload.client.services import visit_label_next
    from xnatlite.models import ImageSession, Subject

    subject = Subject.objects.create(project=project, label="111")
    ImageSession.objects.create(project=project, subject=subject, label="111_v00_mr", accession_id="E1",
                                study_instance_uid="1.2", archive_path="x")
    now = timezone.now()
    PrearchiveSession.objects.create(project=project, timestamp="20240101_000000000", folder_name="f",
                                     name="111_v01_mr", tag="1.3", lastmod=now, uploaded=now)
    assert visit_label_next(project_id=project.pk, pattern="111_v##_mr") == "111_v02_mr"
    assert visit_label_next(project_id=project.pk, pattern="111_v##_mr", taken={"111_v02_mr"}) == "111_v03_mr"
    assert visit_label_next(project_id=project.pk, pattern="111_v##_pet") == "111_v00_pet"
