"""Intake in autocommit on PostgreSQL (the receiver's case): the one-round-trip fast path and its fallbacks."""
from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import fastpath
from tests.dicom_factory import make_dataset

from .conftest import receive

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db(transaction=True)


def test_files_after_the_first_take_the_fast_path(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    with mock.patch.object(fastpath, "touch_and_insert", wraps=fastpath.touch_and_insert) as fast:
        results = [receive(make_dataset(StudyInstanceUID=study)) for _ in range(3)]
    assert [r.status for r in results] == ["stored"] * 3 and fast.call_count == 3
    assert all(c.args == () for c in fast.call_args_list)
    session = PrearchiveSession.objects.get()
    assert session.files.count() == 4
    assert len(list(settings.PREARCHIVE_ROOT.rglob("*.dcm"))) == 4


def test_a_duplicate_on_the_fast_path_replaces_the_earlier_copy(site):
    study = generate_uid()
    ds = make_dataset(StudyInstanceUID=study, SeriesNumber=1)
    receive(ds)
    ds.SeriesNumber = 2
    assert receive(ds).status == "duplicate"
    assert PrearchiveFile.objects.get().scan_id == "2"
    assert [p.parts[-3] for p in settings.PREARCHIVE_ROOT.rglob("*.dcm")] == ["2"]


def test_a_late_file_for_a_ready_session_reopens_it(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    PrearchiveSession.objects.update(status=Status.READY)
    assert receive(make_dataset(StudyInstanceUID=study)).status == "stored"
    session = PrearchiveSession.objects.get()
    assert session.status == Status.RECEIVING and session.files.count() == 2


def test_a_session_removed_meanwhile_gets_a_new_folder_and_the_file_follows(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    old = PrearchiveSession.objects.get()
    PrearchiveSession.objects.all().delete()
    result = receive(make_dataset(StudyInstanceUID=study))
    new = PrearchiveSession.objects.get()
    assert result.status == "stored" and new.pk != old.pk
    (row,) = new.files.all()
    assert (settings.PREARCHIVE_ROOT / new.relative_dir / row.relative_path).is_file()


def test_the_fast_path_relaxes_its_own_commit_only_and_survives_a_reconnect(site):
    from django.db import connection

    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        before = cursor.fetchone()[0]
    with mock.patch.object(fastpath, "touch_and_insert", wraps=fastpath.touch_and_insert) as fast:
        assert receive(make_dataset(StudyInstanceUID=study)).status == "stored"
        connection.close()  # a new connection: a new prepared statement
        assert receive(make_dataset(StudyInstanceUID=study)).status == "stored"
        assert receive(make_dataset(StudyInstanceUID=study)).status == "stored"
    assert fast.call_count >= 2
    with connection.cursor() as cursor:
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == before  # set_config(..., true) ended with its transaction
    assert PrearchiveSession.objects.get().files.count() == 4
