"""Reload the prearchive database from the file tree (command and PUT /data/prearchive)."""
from __future__ import annotations

import shutil
from io import StringIO

import pytest
from django.core.management import call_command

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services.reload import prearchive_reload

from .conftest import send_study

pytestmark = pytest.mark.django_db


def test_a_dropped_table_is_rebuilt_from_the_tree(site, project, settings):
    send_study(series=((1, "MR", 2), (2, "MR", 1)), PatientComments="Project:PROJ1 Session:S1")
    send_study(series=((1, "CT", 1),))
    before = {(s.project_id, s.timestamp, s.folder_name, s.tag) for s in PrearchiveSession.objects.all()}
    PrearchiveSession.objects.all().delete()
    out = StringIO()
    call_command("reload_prearchive", stdout=out)
    assert "sessions created: 2" in out.getvalue()
    after = {(s.project_id, s.timestamp, s.folder_name, s.tag) for s in PrearchiveSession.objects.all()}
    assert after == before
    assert PrearchiveFile.objects.count() == 4
    assert set(PrearchiveFile.objects.values_list("scan_id", flat=True)) == {"1", "2"}


def test_a_row_whose_folder_is_gone_is_removed(site, settings):
    send_study()
    session = PrearchiveSession.objects.get()
    shutil.rmtree(settings.PREARCHIVE_ROOT / session.relative_dir)
    assert prearchive_reload().rows_removed == 1
    assert not PrearchiveSession.objects.exists()


def test_files_are_reconciled_and_a_ready_session_is_rebuilt(site, settings):
    send_study(series=((1, "MR", 3),))
    session = PrearchiveSession.objects.get()
    PrearchiveSession.objects.update(status=PrearchiveSession.Status.READY)
    victim = PrearchiveFile.objects.first()
    (settings.PREARCHIVE_ROOT / session.relative_dir / victim.relative_path).unlink()
    report = prearchive_reload()
    assert report.files_dropped == 1 and PrearchiveFile.objects.count() == 2
    assert PrearchiveSession.objects.get().status == PrearchiveSession.Status.RECEIVING


def test_reload_on_startup_follows_the_setting(site):
    from unittest import mock

    from prearchive import tasks

    with mock.patch.object(tasks.prearchive_reload, "delay") as delay:
        tasks.reload_on_startup()
        delay.assert_not_called()
        site.reload_prearc_database_on_startup = True
        site.save()
        tasks.reload_on_startup()
        delay.assert_called_once()


def _send(series, params) -> None:
    from pydicom.uid import generate_uid

    from tests.dicom_factory import make_dataset

    from .conftest import receive

    study = generate_uid()
    for number, modality, count in series:
        series_uid = generate_uid()
        for i in range(1, count + 1):
            ds = make_dataset(modality=modality, StudyInstanceUID=study, SeriesInstanceUID=series_uid,
                              SeriesNumber=number, InstanceNumber=i)
            assert receive(ds, params=params).status == "stored"


def _row(session) -> dict:
    from django.forms.models import model_to_dict

    values = model_to_dict(session, fields=[f.name for f in PrearchiveSession._meta.concrete_fields])
    values.pop("id")
    return values


def _files(session) -> list:
    return sorted((f.sop_instance_uid, f.scan_id, f.relative_path, f.series_instance_uid, f.study_instance_uid,
                   f.size, f.modality, f.instance_number) for f in PrearchiveFile.objects.filter(session=session))


@pytest.mark.django_db(transaction=True)
def test_reload_rebuilds_every_field_of_a_lost_row_and_the_session_archives(site, project, admin_user):
    """Issue 14 item 5: subject, visit, source, auto-archive, overwrite, tracer, ... come back from the
    session's documents on disk; archiving then finds its subject (no FAIL-8)."""
    from django.test import Client

    from prearchive.services.archive import session_archive, session_archive_request
    from prearchive.services.builder import session_build
    from xnatlite.models import ImageSession

    params = {"PROJECT_ID": "PROJ1", "SUBJECT_ID": "SUBJ7", "EXPT_LABEL": "SESS7", "VISIT": "V2", "SOURCE": "scanner3",
              "PROTOCOL": "PROT", "TIMEZONE": "Europe/Paris", "AA": "false", "overwrite": "append",
              "prevent_auto_commit": "true"}
    _send(((1, "MR", 2), (2, "MR", 1)), params)
    receiving = PrearchiveSession.objects.get()
    PrearchiveSession.objects.filter(pk=receiving.pk).update(status=PrearchiveSession.Status.QUEUED_BUILDING)
    assert session_build(session_id=receiving.pk) == PrearchiveSession.Status.READY
    PrearchiveSession.objects.filter(pk=receiving.pk).update(pet_tracer="FDG")
    from prearchive.services.rowdoc import row_document_write

    row_document_write(session_id=receiving.pk)  # as the uploader's tracer choice does
    session = PrearchiveSession.objects.get()
    before, files_before = _row(session), _files(session)
    assert (before["subject"], before["visit"], before["source"], before["autoarchive"], before["overwrite"],
            before["pet_tracer"], before["prevent_auto_commit"]) == ("SUBJ7", "V2", "scanner3", 0, "append", "FDG", True)

    PrearchiveSession.objects.all().delete()
    client = Client()
    client.force_login(admin_user)
    response = client.put("/data/prearchive")
    assert response.status_code == 200 and "1 created" in response.content.decode()
    session = PrearchiveSession.objects.get()
    assert _row(session) == before
    assert _files(session) == files_before

    session_archive_request(session=session, actor="admin")
    assert session_archive(session_id=session.pk) == "archived"
    record = ImageSession.objects.get(label="SESS7")
    assert record.subject.label == "SUBJ7"


@pytest.mark.django_db(transaction=True)
def test_a_receiving_session_comes_back_with_its_fields_and_is_built_again(site, project):
    _send(((1, "MR", 2),), {"PROJECT_ID": "PROJ1", "SUBJECT_ID": "SUBJ8", "EXPT_LABEL": "S8", "VISIT": "V1",
                            "SOURCE": "pacs"})
    before = PrearchiveSession.objects.get()
    PrearchiveSession.objects.all().delete()
    assert prearchive_reload().rows_created == 1
    after = PrearchiveSession.objects.get()
    assert (after.subject, after.visit, after.source, after.name, after.tag, after.uploaded) == (
        "SUBJ8", "V1", "pacs", "S8", before.tag, before.uploaded)
    assert after.status == PrearchiveSession.Status.RECEIVING and PrearchiveFile.objects.count() == 2
