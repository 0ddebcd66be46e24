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
