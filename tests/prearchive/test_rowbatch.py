"""The DICOM receiver's rows written together (services/rowbatch.py), on PostgreSQL: files go into their
folders under the writer's lock on the session row, each sender is answered once its row is committed
(group commit), jobs wait for them, and nothing acknowledged is lost when the database fails."""
from __future__ import annotations

import threading
import time
from unittest import mock

import pytest
from django.conf import settings
from django.db import OperationalError, connection
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import fastpath, intake, rowbatch
from tests.conftest import wait_until
from tests.dicom_factory import make_dataset

from .conftest import incoming

Status = PrearchiveSession.Status
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def writer():
    made = []

    def make(**kwargs) -> rowbatch.RowWriter:
        kwargs.setdefault("lone_path", False)  # the writer's own path, also for one sender (lone ones below)
        made.append(rowbatch.RowWriter(**kwargs))
        return made[-1]

    yield make
    for w in made:
        w.stop()


def send(ds, row_writer):
    return intake.dicom_file_receive(data=incoming(ds).read_bytes(), source="dicom", row_writer=row_writer)


def session_begun(w) -> str:
    """A new study's first file (it makes the session, per file: the writer pins known sessions only)."""
    study = generate_uid()
    assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
    return study


def rows() -> int:
    return PrearchiveFile.objects.count()


def files_in_tree() -> set[str]:
    return {p.name for p in settings.PREARCHIVE_ROOT.rglob("*.dcm")}


def in_thread(fn):
    """fn() on another thread, with its own database connection; returns its result."""
    out = {}

    def run():
        try:
            out["value"] = fn()
        finally:
            connection.close()

    t = threading.Thread(target=run)
    t.start()
    t.join(60)
    return out["value"]


def claim_while_a_file_waits(w, study: str, pk: int, *, slowed: str, files: int):
    """One more file sent on another thread while ``fastpath.<slowed>`` takes 0.5 s (its file in its folder,
    its row not yet committed); once ``files`` files are in the tree, a job claims the session as every job
    does (an UPDATE of the row). Returns (the sender's statuses, rows claimed, rows seen by the claim, seconds
    the claim waited)."""
    real = getattr(fastpath, slowed)

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    out: list = []

    def sender():
        try:
            out.append(send(make_dataset(StudyInstanceUID=study), w).status)
        finally:
            connection.close()

    with mock.patch.object(fastpath, slowed, side_effect=slow):
        t = threading.Thread(target=sender)
        t.start()
        wait_until(lambda: len(files_in_tree()) == files, timeout=10, every=0.01, what="the file in its folder")
        started = time.monotonic()
        claimed = PrearchiveSession.objects.filter(pk=pk, status=Status.RECEIVING).update(status=Status.BUILDING)
        waited = time.monotonic() - started
        rows_when_claimed = PrearchiveFile.objects.filter(session_id=pk).count()
        t.join(30)
    return out, claimed, rows_when_claimed, waited


def test_each_file_is_answered_only_once_its_row_is_committed(site, writer):
    w = writer(max_age=5.0)
    study = session_begun(w)
    assert rows() == 1
    started = time.monotonic()
    for n in range(5):
        assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
        assert in_thread(rows) == n + 2  # another connection sees the row as soon as the sender hears Success
    assert time.monotonic() - started < 5.0  # nobody waited for max_age: the commit follows the last holder
    session = PrearchiveSession.objects.get()
    assert session.status == Status.RECEIVING
    assert {r.relative_path.rsplit("/", 1)[-1] for r in session.files.all()} == files_in_tree()


def test_files_of_concurrent_associations_share_commits(site, writer):
    w = writer(max_age=1.0)
    study = session_begun(w)
    real = fastpath.touch_and_insert_many

    def slow(**kwargs):  # a commit that takes a while: the files that come meanwhile wait for the next one
        time.sleep(0.05)
        return real(**kwargs)

    def association():
        try:
            return [send(make_dataset(StudyInstanceUID=study), w).status for _ in range(10)]
        finally:
            connection.close()

    with mock.patch.object(fastpath, "touch_and_insert_many", side_effect=slow) as many:
        out: list = []
        threads = [threading.Thread(target=lambda: out.append(association())) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(sum(out, [])) == ["stored"] * 40
    assert rows() == 41
    assert many.call_count <= 25, many.call_count  # group commit: fewer statements (and flushes) than files


def test_a_job_claiming_the_session_waits_until_the_rows_are_committed(site, writer):
    w = writer(max_age=1.0)
    study = session_begun(w)
    pk = PrearchiveSession.objects.get().pk
    out, claimed, rows_when_claimed, waited = claim_while_a_file_waits(w, study, pk, slowed="touch_and_insert_many",
                                                                      files=2)
    assert out == ["stored"]
    assert claimed == 1 and rows_when_claimed == 2  # the claim saw every row of every file in the folder
    assert waited > 0.2


def test_rows_that_cannot_be_written_together_are_written_one_by_one(site, writer):
    w = writer(max_age=0.1)
    study = session_begun(w)
    with mock.patch.object(fastpath, "touch_and_insert_many", side_effect=OperationalError("server closed")):
        results = [send(make_dataset(StudyInstanceUID=study), w) for _ in range(3)]
        wait_until(lambda: rows() == 4, timeout=5, every=0.02, what="the rows, one by one")
    assert [r.status for r in results] == ["stored"] * 3
    assert len(files_in_tree()) == 4 and PrearchiveSession.objects.get().status == Status.RECEIVING


def test_while_the_database_fails_the_sender_hears_a_failure_and_the_row_lands_later(site, writer):
    w = writer(max_age=0.1)
    study = session_begun(w)
    real_general = intake._store_general
    failing = {"left": 3}

    def general(**kwargs):
        if failing["left"]:
            failing["left"] -= 1
            raise OperationalError("the database is away")
        return real_general(**kwargs)

    first = make_dataset(StudyInstanceUID=study)
    with mock.patch.object(fastpath, "touch_and_insert_many", side_effect=OperationalError("away")), \
            mock.patch.object(intake, "_store_general", side_effect=general):
        with pytest.raises(intake.IntakeError):  # no Success for a file whose row is not committed
            send(first, w)
        assert w._retry and rows() == 1 and len(files_in_tree()) == 2  # the file stays; its row is retried
        with mock.patch.object(fastpath, "touch_and_insert", wraps=fastpath.touch_and_insert) as per_file:
            assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
        assert per_file.call_count == 1  # nothing new is pinned while rows wait: the per-file path answers
        assert rows() == 2
        wait_until(lambda: rows() == 3, timeout=10, every=0.05, what="the retried row")
    assert send(first, w).status == "duplicate"  # the sender's resend: the instance once
    assert rows() == 3
    assert {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()


def test_a_second_copy_of_a_waiting_instance_replaces_it_once_the_row_is_written(site, writer):
    w = writer(max_age=0.3)
    study = session_begun(w)
    ds = make_dataset(StudyInstanceUID=study, SeriesNumber=1)
    first = send(ds, w)
    ds.SeriesNumber = 2
    second = send(ds, w)  # per file: waits for the writer's commit (the session row), then replaces the row
    assert (first.status, second.status) == ("stored", "duplicate")
    wait_until(lambda: rows() == 2, timeout=5, every=0.02, what="the rows")
    row = PrearchiveFile.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    assert row.scan_id == "2" and len(files_in_tree()) == 2


def test_a_stopped_writer_pins_nothing(site, writer):
    w = writer(max_age=60)
    study = session_begun(w)
    for _ in range(4):
        send(make_dataset(StudyInstanceUID=study), w)
    assert rows() == 5  # each answered after its commit, long before max_age
    w.stop()
    assert not w._thread.is_alive()
    with mock.patch.object(fastpath, "touch_and_insert", wraps=fastpath.touch_and_insert) as per_file:
        assert send(make_dataset(StudyInstanceUID=study), w).status == "stored" and rows() == 6
    assert per_file.call_count == 1


def test_no_writer_where_rows_are_written_file_by_file(settings):
    settings.DICOM_RECEIVER_ROW_BATCH_SECONDS = 0
    assert rowbatch.writer_get() is None


def test_a_pin_asked_for_while_another_file_goes_in_joins_its_transaction(site, writer):
    """Two associations, two sessions (two scanners): while A's file goes into its folder (A holds its pin),
    B's pin is granted at once in the same transaction, B's file goes in meanwhile, and one commit writes
    both rows. (Before, B's pin waited until A's file was in and committed: one association at a time.)"""
    w = writer(max_age=5.0)
    study_a, study_b = session_begun(w), session_begun(w)
    real_place, real_commit = intake._place, w._commit
    b_placed = threading.Event()
    waited = {}
    commits = []

    def place(path, data, placed):
        if threading.current_thread().name == "A":  # A's file takes a while; B's comes meanwhile
            waited["b_in_first"] = b_placed.wait(5)
        real_place(path, data, placed)
        if threading.current_thread().name == "B":
            b_placed.set()

    def commit(pending):
        commits.append(len(pending))
        return real_commit(pending)

    out = {}

    def sender(name, study):
        try:
            out[name] = send(make_dataset(StudyInstanceUID=study), w).status
        finally:
            connection.close()

    with mock.patch.object(intake, "_place", side_effect=place), mock.patch.object(w, "_commit", side_effect=commit):
        a = threading.Thread(target=sender, args=("A", study_a), name="A")
        a.start()
        wait_until(lambda: w._holders == 1, timeout=10, every=0.005, what="A's pin")
        b = threading.Thread(target=sender, args=("B", study_b), name="B")
        b.start()
        a.join(30)
        b.join(30)
    assert out == {"A": "stored", "B": "stored"}
    assert waited == {"b_in_first": True}  # B's file went in while A still held its pin
    assert commits == [2]  # one commit for both rows
    assert rows() == 4 and len(files_in_tree()) == 4


def test_the_writers_connection_is_checked_at_most_once_a_second(site, writer):
    """close_old_connections() with health checks on costs a round trip on the next statement: the writer
    does it when a transaction begins, but at most once a second (a broken connection fails its pin)."""
    w = writer(max_age=5.0)
    study = session_begun(w)
    with mock.patch.object(rowbatch, "close_old_connections", wraps=rowbatch.close_old_connections) as checks:
        started = time.monotonic()
        for _ in range(8):  # 8 files one after another: 8 transactions
            assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
        took = time.monotonic() - started
    assert rows() == 9
    assert checks.call_count <= 1 + int(took / rowbatch.CONNECTION_CHECK_SECONDS), (checks.call_count, took)


# ------------------------------------------------------------------- a lone association (RowWriter.alone)
def test_a_lone_association_commits_each_row_in_its_own_transaction_before_success(site, writer):
    w = writer(lone_path=True, max_age=5.0)
    study = session_begun(w)
    with mock.patch.object(fastpath, "touch_and_insert_many") as many, \
            mock.patch.object(fastpath, "row_insert", wraps=fastpath.row_insert) as lone:
        for n in range(5):
            assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
            assert in_thread(rows) == n + 2  # committed before the answer
    assert lone.call_count == 5 and many.call_count == 0 and not w._pins
    assert {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()


def test_a_job_claiming_the_session_during_a_lone_file_waits_for_its_commit(site, writer):
    w = writer(lone_path=True)
    study = session_begun(w)
    pk = PrearchiveSession.objects.get().pk
    out, claimed, rows_when_claimed, waited = claim_while_a_file_waits(w, study, pk, slowed="row_insert", files=2)
    assert out == ["stored"]
    assert claimed == 1 and rows_when_claimed == 2 and waited > 0.2


def test_a_lone_file_for_a_session_claimed_first_goes_the_general_way(site, writer):
    w = writer(lone_path=True)
    study = session_begun(w)
    session = PrearchiveSession.objects.get()
    PrearchiveSession.objects.filter(pk=session.pk).update(status=Status.BUILDING)  # a job got there first
    with mock.patch.object(fastpath, "row_insert", wraps=fastpath.row_insert) as lone:
        assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
    assert lone.call_count == 0  # the locking UPDATE matched nothing: nothing placed the lone way
    session.refresh_from_db()
    assert session.status == Status.RECEIVING_INTERRUPT and rows() == 2  # as any late file (reference §7)
    assert {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()


def test_a_lone_file_whose_row_fails_is_not_left_in_its_folder_nor_acknowledged(site, writer):
    w = writer(lone_path=True)
    study = session_begun(w)
    with mock.patch.object(fastpath, "row_insert", side_effect=OperationalError("the database is away")):
        with pytest.raises(intake.IntakeError):
            send(make_dataset(StudyInstanceUID=study), w)
    assert rows() == 1 and len(files_in_tree()) == 1
    assert PrearchiveSession.objects.get().status == Status.RECEIVING
    assert send(make_dataset(StudyInstanceUID=study), w).status == "stored" and rows() == 2  # and goes on


def test_a_second_association_sends_files_through_the_writer_again(site, writer, monkeypatch):
    monkeypatch.setattr(rowbatch, "ALONE_SECONDS", 0.3)
    w = writer(lone_path=True)
    assert w.alone()
    assert in_thread(w.alone) is False  # another thread: both batch through the writer
    assert not w.alone()
    time.sleep(0.4)  # the other one went quiet
    assert w.alone()


def paused_before_row(target_thread: str):
    """A ``fastpath.row_insert`` that, on ``target_thread``, stops after the file went into its folder and
    before its row (the worst moment for a job): returns (patch, reached, release)."""
    real = fastpath.row_insert
    reached, release = threading.Event(), threading.Event()

    def row_insert(cursor, **kwargs):
        if threading.current_thread().name == target_thread and not release.is_set():
            reached.set()
            assert release.wait(20)
        return real(cursor, **kwargs)

    return mock.patch.object(fastpath, "row_insert", side_effect=row_insert), reached, release


def test_a_second_association_arriving_mid_stream_joins_the_writer(site, writer):
    """A is alone and inside its own transaction (file in place, row not yet) when B starts on the same
    session: B's pin cannot be had (A holds the row), B's file waits for A's commit on the per-file path;
    from then on both go through the writer, every Success with its row committed."""
    w = writer(max_age=5.0, lone_path=True)
    study = session_begun(w)
    pk = PrearchiveSession.objects.get().pk
    patch, reached, release = paused_before_row("A")
    out: dict = {"A": [], "B": []}
    unseen: list = []

    def association(name, n):
        try:
            for _ in range(n):
                result = send(make_dataset(StudyInstanceUID=study), w)
                if not in_thread(lambda: PrearchiveFile.objects.filter(
                        session_id=pk, sop_instance_uid=result.sop_instance_uid).exists()):
                    unseen.append(name)  # a Success for a row nobody else can see
                out[name].append(result.status)
        finally:
            connection.close()

    with patch, mock.patch.object(w, "_commit", wraps=w._commit) as commits:
        a = threading.Thread(target=association, args=("A", 6), name="A")
        a.start()
        assert reached.wait(20)
        b = threading.Thread(target=association, args=("B", 6), name="B")
        b.start()
        b.join(1.0)
        assert b.is_alive() and out["B"] == []  # B's first file waits for A's row lock
        release.set()
        a.join(60)
        b.join(60)
    assert not a.is_alive() and not b.is_alive()
    assert out == {"A": ["stored"] * 6, "B": ["stored"] * 6} and unseen == []
    assert commits.call_count >= 1  # the files after B came went through the writer
    assert rows() == 13 and len(files_in_tree()) == 13
    assert {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()


def test_a_lone_file_whose_commit_outcome_is_unknown_keeps_its_file(site, writer):
    """The connection drops after the server committed: no Success (the sender resends), and the row
    that did land must not name a missing file."""
    w = writer(max_age=5.0, lone_path=True)
    study = session_begun(w)
    real = fastpath.transaction_end

    def transaction_end(cursor, *, commit):
        real(cursor, commit=commit)
        if commit:
            raise OperationalError("server closed the connection unexpectedly")

    ds = make_dataset(StudyInstanceUID=study)
    with mock.patch.object(fastpath, "transaction_end", side_effect=transaction_end):
        with pytest.raises(intake.IntakeError):
            send(ds, w)
    assert rows() == 2
    assert {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()
    assert send(ds, w).status == "duplicate"  # the sender's resend: the instance once
    assert rows() == 2 and len(files_in_tree()) == 2


def test_an_association_handing_over_a_file_by_path_counts_as_another_one(site, writer):
    """Every file that could use the writer registers its thread, whatever form it comes in: a second
    association that passes a path (no bytes) still ends the first one's lone path."""
    w = writer(lone_path=True, max_age=5.0)
    study = session_begun(w)
    assert w.alone()
    result = in_thread(lambda: intake.dicom_file_receive(path=incoming(make_dataset(StudyInstanceUID=study)),
                                                         source="dicom", row_writer=w))
    assert result.status == "stored"
    assert not w.alone()  # two associations within ALONE_SECONDS: both go through the writer
    assert rows() == 2 and len(files_in_tree()) == 2


# ------------------------------------------------- every association its own transactions (share mode)
@pytest.fixture
def share_window(monkeypatch):
    """A file within 1 s of its process's last lastmod bump takes the session row in share mode."""
    monkeypatch.setattr(intake, "_SHARE_WINDOW", [1.0, time.monotonic() + 3600])
    monkeypatch.setattr(intake, "_BUMPED", {})


def test_every_association_commits_its_own_rows_side_by_side(site, writer, share_window):
    w = writer(lone_path=True, every_association=True)
    study = session_begun(w)
    modes = []
    real_lock = fastpath.session_lock

    def lock(**kwargs):
        modes.append(kwargs["share"])
        return real_lock(**kwargs)

    def association():
        try:
            statuses = []
            for _ in range(10):
                statuses.append(send(make_dataset(StudyInstanceUID=study), w).status)
                statuses.append(in_thread(rows) >= 2)  # committed before the answer
            return statuses
        finally:
            connection.close()

    out: list = []
    with mock.patch.object(fastpath, "touch_and_insert_many") as many, \
            mock.patch.object(fastpath, "session_lock", side_effect=lock):
        threads = [threading.Thread(target=lambda: out.append(association())) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    assert sorted(map(str, sum(out, []))) == sorted(["stored", "True"] * 40)
    assert many.call_count == 0 and rows() == 41
    assert len(modes) == 40 and modes.count(False) <= 6 and modes.count(True) >= 34  # lastmod moved ~once a second
    assert {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()


def test_a_job_claiming_the_session_waits_for_a_share_mode_file(site, writer, share_window):
    w = writer(lone_path=True, every_association=True)
    study = session_begun(w)
    pk = PrearchiveSession.objects.get().pk
    assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"  # moves lastmod (exclusive)
    real_lock = fastpath.session_lock
    modes = []

    def lock(**kwargs):
        modes.append(kwargs["share"])
        return real_lock(**kwargs)

    with mock.patch.object(fastpath, "session_lock", side_effect=lock):
        out, claimed, rows_when_claimed, waited = claim_while_a_file_waits(w, study, pk, slowed="row_insert",
                                                                          files=3)
    assert modes == [True] and out == ["stored"]
    assert claimed == 1 and rows_when_claimed == 3 and waited > 0.2
    # Claimed: the next file finds the session taken and goes the general way (a late file).
    assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"
    assert PrearchiveSession.objects.get(pk=pk).status == Status.RECEIVING_INTERRUPT and rows() == 4


def test_two_copies_of_one_instance_side_by_side_leave_the_acknowledged_file(site, writer, share_window):
    """Both copies take the session row in share mode; the one that finds the name taken never overwrites
    or removes the other's file: one row, and it names a file that is there."""
    w = writer(lone_path=True, every_association=True)
    study = session_begun(w)
    assert send(make_dataset(StudyInstanceUID=study), w).status == "stored"  # lastmod moved: share mode next
    ds = make_dataset(StudyInstanceUID=study)
    real_insert = fastpath.row_insert
    first_in = threading.Event()

    def slow_first(cursor, **kwargs):
        if not first_in.is_set():
            first_in.set()
            time.sleep(0.5)  # the first copy's file is in place, its row not yet written
        return real_insert(cursor, **kwargs)

    out: list = []

    def sender():
        try:
            out.append(send(ds, w).status)
        finally:
            connection.close()

    with mock.patch.object(fastpath, "row_insert", side_effect=slow_first):
        first = threading.Thread(target=sender)
        first.start()
        assert first_in.wait(10)
        second = threading.Thread(target=sender)
        second.start()
        first.join(30)
        second.join(30)
    assert sorted(out) == ["duplicate", "stored"]
    row = PrearchiveFile.objects.get(sop_instance_uid=ds.SOPInstanceUID)
    session = PrearchiveSession.objects.get()
    assert (settings.PREARCHIVE_ROOT / session.relative_dir / row.relative_path).is_file()
    assert rows() == 3 and {r.relative_path.rsplit("/", 1)[-1] for r in PrearchiveFile.objects.all()} == files_in_tree()
