"""Files handed over together (archives, folders): dicom_files_receive writes the rows of many files in one
statement per session, and every outcome is the one file-by-file intake gives."""
from __future__ import annotations

from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import fastpath, intake
from tests.dicom_factory import make_dataset

from .conftest import incoming, receive

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db(transaction=True)


def files_on_disk() -> list:
    return sorted(settings.PREARCHIVE_ROOT.rglob("*.dcm"))


def rows_match_tree() -> None:
    """Every row names a file and every file has a row."""
    rows = {f"{s.relative_dir}/{rel}" for s in PrearchiveSession.objects.all()
            for rel in s.files.values_list("relative_path", flat=True)}
    tree = {str(p.relative_to(settings.PREARCHIVE_ROOT)) for p in files_on_disk()}
    assert rows == tree


def many(paths, **kwargs):
    kwargs.setdefault("source", "test")
    return list(intake.dicom_files_receive(paths, **kwargs))


def test_rows_of_a_known_session_are_written_together(site):
    study = generate_uid()
    datasets = [make_dataset(StudyInstanceUID=study, SeriesNumber=1 + i % 2, InstanceNumber=i) for i in range(25)]
    with mock.patch.object(fastpath, "touch_and_insert_many", wraps=fastpath.touch_and_insert_many) as grouped:
        results = many([incoming(ds) for ds in datasets], group_files=10)
    assert [r.status for r in results] == ["stored"] * 25
    assert [r.sop_instance_uid for r in results] == [str(ds.SOPInstanceUID) for ds in datasets]
    # The first file makes the session (general path); the other 24 go 10 + 10 + 4 in three statements.
    assert [len(c.kwargs["rows"]) for c in grouped.call_args_list] == [10, 10, 4]
    session = PrearchiveSession.objects.get()
    assert session.status == Status.RECEIVING and session.files.count() == 25
    row = session.files.get(sop_instance_uid=str(datasets[7].SOPInstanceUID))
    assert (row.scan_id, row.instance_number, row.modality, row.series_number) == ("2", 7, "MR", "2")
    assert {r.session_id for r in results} == {session.pk} and results[-1].uri == session.uri
    rows_match_tree()


def test_results_keep_the_order_of_the_files_whatever_their_outcome(site, tmp_path):
    study = generate_uid()
    junk = tmp_path / "junk.dcm"
    junk.write_bytes(b"not a DICOM file")
    no_sop = make_dataset(StudyInstanceUID=study)
    del no_sop.SOPInstanceUID
    paths = [incoming(make_dataset(StudyInstanceUID=study)), incoming(make_dataset(StudyInstanceUID=study)),
             incoming(junk), incoming(make_dataset(StudyInstanceUID=study)), incoming(no_sop),
             incoming(make_dataset(StudyInstanceUID=study))]
    assert [r.status for r in many(paths)] == ["stored", "stored", "rejected", "stored", "rejected", "stored"]
    assert PrearchiveFile.objects.count() == 4 and len(files_on_disk()) == 4
    assert not list(settings.UPLOAD_TMP_ROOT.iterdir()), "intake takes every temporary file over"


def test_a_second_copy_in_the_same_group_is_a_duplicate(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    copy = make_dataset(StudyInstanceUID=study, SeriesNumber=1)
    moved = make_dataset(StudyInstanceUID=study, SeriesNumber=1)
    paths = [incoming(copy), incoming(moved), incoming(copy)]
    moved.SeriesNumber = 3  # the same instance again, now in another series: the earlier copy goes
    paths.append(incoming(moved))
    assert [r.status for r in many(paths)] == ["stored", "stored", "duplicate", "duplicate"]
    assert PrearchiveFile.objects.count() == 3
    assert PrearchiveFile.objects.get(sop_instance_uid=str(moved.SOPInstanceUID)).scan_id == "3"
    rows_match_tree()


def test_a_session_built_while_its_rows_wait_is_reopened(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))

    def paths():
        for i in range(6):
            if i == 3:  # the idle checker built the session after three files were placed
                PrearchiveSession.objects.update(status=Status.READY)
            yield incoming(make_dataset(StudyInstanceUID=study))

    results = many(paths())
    assert [r.status for r in results] == ["stored"] * 6
    session = PrearchiveSession.objects.get()
    assert session.status == Status.RECEIVING and session.files.count() == 7
    rows_match_tree()


def test_a_session_deleted_while_its_rows_wait_gets_a_new_folder_and_the_files_follow(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    old = PrearchiveSession.objects.get()

    def paths():
        for i in range(4):
            if i == 2:
                PrearchiveSession.objects.all().delete()  # the row only: its folder still holds the files
            yield incoming(make_dataset(StudyInstanceUID=study))

    results = many(paths())
    new = PrearchiveSession.objects.get()
    assert new.pk != old.pk and [r.status for r in results] == ["stored"] * 4
    assert {r.session_id for r in results} == {new.pk} and new.files.count() == 4
    for row in new.files.all():
        assert (settings.PREARCHIVE_ROOT / new.relative_dir / row.relative_path).is_file()


def test_a_database_fault_at_the_group_write_removes_the_waiting_files(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    paths = [incoming(make_dataset(StudyInstanceUID=study)) for _ in range(7)]
    seen = []
    real = fastpath.touch_and_insert_many
    calls = iter([real, OperationalError("server closed the connection")])

    def flaky(**kwargs):
        step = next(calls)
        if isinstance(step, Exception):
            raise step
        return step(**kwargs)

    with mock.patch.object(fastpath, "touch_and_insert_many", flaky):
        with pytest.raises(intake.IntakeError, match="database is not available"):
            for result in intake.dicom_files_receive(paths, source="test", group_files=4):
                seen.append(result)
    # The first group was written and reported; the second was not, and its files are gone.
    assert [r.status for r in seen] == ["stored"] * 4
    assert PrearchiveFile.objects.count() == 5 and len(files_on_disk()) == 5
    assert {r.sop_instance_uid for r in seen} < set(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    rows_match_tree()


def test_stopping_early_leaves_no_file_without_its_row(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    results = intake.dicom_files_receive([incoming(make_dataset(StudyInstanceUID=study)) for _ in range(5)],
                                         source="test", group_files=2)
    first = next(results)
    results.close()  # the caller stops after the first result: what was placed is written or removed
    assert first.status == "stored"
    rows_match_tree()


def test_inside_a_transaction_files_are_taken_one_by_one(site):
    from django.db import transaction

    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))
    with mock.patch.object(fastpath, "touch_and_insert_many") as grouped, transaction.atomic():
        results = many([incoming(make_dataset(StudyInstanceUID=study)) for _ in range(3)])
    assert [r.status for r in results] == ["stored"] * 3 and not grouped.called
    assert PrearchiveFile.objects.count() == 4


def test_a_failing_source_of_paths_leaves_no_file_without_its_row(site):
    study = generate_uid()
    receive(make_dataset(StudyInstanceUID=study))

    def paths():
        for _ in range(3):
            yield incoming(make_dataset(StudyInstanceUID=study))
        raise RuntimeError("the folder went away")

    with pytest.raises(RuntimeError):
        many(paths())
    assert PrearchiveFile.objects.count() == 4
    rows_match_tree()
