"""Files in a session folder without a row (a receiver killed between the file and its row's commit):
the builder and the archive adopt them before they act, start-up recovery adopts them for every session,
and nothing is ever deleted because no row names it (issue 16, item 1)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from pydicom import dcmread
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services.archive import session_archive, session_archive_request
from prearchive.services.builder import session_build
from prearchive.services.reload import sessions_reconcile
from tests.dicom_factory import make_dataset, write_dataset
from xnatlite.models import ImageSession

from .conftest import receive

S = PrearchiveSession.Status
pytestmark = pytest.mark.django_db(transaction=True)


def study_in(count: int = 3, **tags):
    study = generate_uid()
    series = generate_uid()
    for i in range(count):
        assert receive(make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=1,
                                    InstanceNumber=i + 1, PatientComments="Project:PROJ1 Subject:S1 Session:S1_MR",
                                    **tags)).ok
    return PrearchiveSession.objects.get(tag=study), series


def orphan(session, series: str, *, n: int = 1) -> set[str]:
    """Files put in the session's scan folder as intake does, but with no row (the row's commit never came)."""
    folder = Path(settings.PREARCHIVE_ROOT) / session.relative_dir / "SCANS" / "1" / "DICOM"
    sops = set()
    for i in range(n):
        ds = make_dataset(StudyInstanceUID=session.tag, SeriesInstanceUID=series, SeriesNumber=1,
                          InstanceNumber=100 + i)
        write_dataset(ds, folder / f"{ds.SOPInstanceUID}.dcm")
        sops.add(str(ds.SOPInstanceUID))
    return sops


def test_the_builder_adopts_a_file_without_a_row(site, project):
    session, series = study_in(3)
    extra = orphan(session, series, n=2)
    assert session_build(session_id=session.pk, expected=(S.RECEIVING,)) == S.READY
    session.refresh_from_db()
    assert session.file_count == 5
    assert extra <= set(PrearchiveFile.objects.filter(session=session).values_list("sop_instance_uid", flat=True))


def test_an_unreadable_file_without_a_row_stops_the_build_with_a_reason_and_stays(site, project):
    session, _series = study_in(2)
    junk = Path(settings.PREARCHIVE_ROOT) / session.relative_dir / "SCANS" / "1" / "DICOM" / "junk.dcm"
    junk.write_bytes(b"not dicom at all")
    assert session_build(session_id=session.pk, expected=(S.RECEIVING,)) == S.ERROR
    session.refresh_from_db()
    assert "no row and cannot be read" in session.error_message
    assert junk.is_file()


def test_the_archive_adopts_a_file_without_a_row_and_archives_it(site, project):
    session, series = study_in(3)
    assert session_build(session_id=session.pk, expected=(S.RECEIVING,)) == S.READY
    extra = orphan(session, series, n=1)  # arrived after the build, its row never committed
    session.refresh_from_db()
    session_archive_request(session=session, actor="test")
    assert session_archive(session_id=session.pk) == "archived"
    record = ImageSession.objects.get()
    archived = {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID)
                for p in (Path(settings.ARCHIVE_ROOT) / record.archive_path).rglob("*.dcm")}
    assert len(archived) == 4 and extra <= archived
    assert not PrearchiveSession.objects.exists()


def test_the_archive_cleanup_keeps_a_file_that_has_no_row_and_cannot_be_read(site, project, monkeypatch):
    from prearchive.services import archive

    session, _series = study_in(2)
    assert session_build(session_id=session.pk, expected=(S.RECEIVING,)) == S.READY
    session.refresh_from_db()
    session_archive_request(session=session, actor="test")
    junk = Path(settings.PREARCHIVE_ROOT) / session.relative_dir / "SCANS" / "1" / "DICOM" / "late.dcm"
    real_cleanup = archive._cleanup

    def cleanup(*args, **kwargs):  # a file shows up between the copy and the cleanup
        junk.write_bytes(b"garbage")
        return real_cleanup(*args, **kwargs)

    monkeypatch.setattr(archive, "_cleanup", cleanup)
    assert session_archive(session_id=session.pk) == "archived"
    assert junk.is_file()  # never deleted
    left = PrearchiveSession.objects.get()
    assert left.status == S.ERROR and "cannot be read" in left.error_message


def test_an_unreadable_orphan_stops_the_archive_before_anything_is_copied(site, project):
    session, _series = study_in(2)
    assert session_build(session_id=session.pk, expected=(S.RECEIVING,)) == S.READY
    junk = Path(settings.PREARCHIVE_ROOT) / session.relative_dir / "SCANS" / "1" / "DICOM" / "junk.dcm"
    junk.write_bytes(b"garbage")
    session.refresh_from_db()
    session_archive_request(session=session, actor="test")
    assert session_archive(session_id=session.pk) == "error"
    session.refresh_from_db()
    assert session.status == S.ERROR and "nothing was archived" in session.error_message
    assert junk.is_file() and not ImageSession.objects.exists()


def test_start_up_recovery_adopts_for_every_session_and_rebuilds_built_ones(site, project):
    ready, series_a = study_in(2)
    assert session_build(session_id=ready.pk, expected=(S.RECEIVING,)) == S.READY
    receiving, series_b = study_in(2)
    a, b = orphan(ready, series_a), orphan(receiving, series_b, n=3)
    assert sessions_reconcile() == 4
    ready.refresh_from_db()
    receiving.refresh_from_db()
    assert ready.status == S.RECEIVING and receiving.status == S.RECEIVING  # built again with its new file
    assert ready.files.count() == 3 and receiving.files.count() == 5
    assert a | b <= set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert sessions_reconcile() == 0  # nothing twice


def test_a_stale_copy_of_an_instance_listed_elsewhere_is_not_adopted(site, project):
    session, series = study_in(1)
    row = PrearchiveFile.objects.get(session=session)
    base = Path(settings.PREARCHIVE_ROOT) / session.relative_dir
    stale = base / "SCANS" / "9" / "DICOM" / Path(row.relative_path).name
    stale.parent.mkdir(parents=True)
    shutil.copyfile(base / row.relative_path, stale)  # a replace into another scan folder cut short
    assert sessions_reconcile() == 0
    assert PrearchiveFile.objects.filter(session=session).count() == 1


def test_start_up_recovery_removes_a_killed_writers_stale_temporary_file_only(site, project):
    import os
    import time

    session, _series = study_in(1)
    folder = Path(settings.PREARCHIVE_ROOT) / session.relative_dir / "SCANS" / "1" / "DICOM"
    stale, fresh = folder / ".a.dcm.123.deadbeef.tmp", folder / ".b.dcm.456.cafebabe.tmp"
    stale.write_bytes(b"half a file")
    fresh.write_bytes(b"being written")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    sessions_reconcile()
    assert not stale.exists() and fresh.exists()  # a live writer's file is never touched
