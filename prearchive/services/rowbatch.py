"""The DICOM receiver's file rows, written together (PostgreSQL), group commit style.

One row per received file costs a round trip, a statement and a WAL flush for every C-STORE. Here the rows
of the files the receiver's associations store for sessions it already knows are written by one thread,
together, in one transaction with a synchronous commit; each association's thread waits for the commit of
its file's row before it answers (``wait``): a Success is only ever sent for a file whose bytes are in the
folder and whose row is committed (issue 16). The writer commits as soon as every association it has let
in has handed over its row (nobody holds a pin), or after ``max_age`` seconds or ``max_rows`` files at the
latest; the files that come while a commit runs go into the next one, so with several associations a commit
(and its flush) serves several files.

The session row's lock keeps jobs out while files go in. Before a file goes into its session folder, the
writer's open transaction holds a lock on the session's row, taken by an UPDATE (``lastmod``) whose
conditions are the fast path's (same session, folder, still RECEIVING). Every job that moves, archives,
deletes or builds a session starts by changing its status with an UPDATE of that row, so it waits until the
transaction has committed, rows included. The writer never waits for a lock itself (``SKIP LOCKED``): a
session locked by someone else is simply not pinned, and that file takes the per-file path as before.

If the commit fails, the rows are written file by file through intake's general path (which also deals with
a session that changed meanwhile); a file whose row cannot be written even so gets a failure status (its
sender sends it again), while its row is kept and retried every second. If the receiver dies first, the file
is in its folder without a row: builds, archives and start-up recovery adopt such files (reload.py,
``session_files_adopt``); they are never deleted. While rows wait for a retry, nothing new is pinned, so the
receiver answers every new file on the per-file path: a failure status if the database is still away.

A lone association (``alone()``: no other thread has handed a file to this writer for ``ALONE_SECONDS``, and
nothing is pinned or waiting) gains nothing from batching and would pay two thread hand-offs and the writer's
round trips for each file. Its thread writes the file's row in a transaction of its own instead, in the same
order: the session's row locked first (the same conditional UPDATE), then the file renamed into place, then
the row, then COMMIT, and only then Success (intake ``_store_alone``). A job claiming the session waits for
that commit exactly as it waits for the writer's.

With ``every_association`` (DICOM_RECEIVER_OWN_TRANSACTIONS, the receiver's default) every association does
so, side by side on their own connections, and the writer serves only what cannot (files handed over by
path, rows waiting for a retry). One session's files then must not take turns on its row: a file takes it
in share mode (``SELECT ... FOR SHARE``, which a job's claiming UPDATE waits for just as for an exclusive
lock, and which shares with the other associations' files) when this process moved the session's
``lastmod`` less than a second ago (at most a twentieth of the Session Idle Time); otherwise it takes it
exclusively and moves ``lastmod`` (intake ``_store_alone``). No transaction upgrades its lock, and each
locks one session row before anything else, so they cannot deadlock on it.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

from django.conf import settings
from django.db import close_old_connections, connection

from prearchive.models import PrearchiveSession

logger = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
CONNECTION_CHECK_SECONDS = 1.0  # close_old_connections() at most this often (each costs a round trip, below)
PIN_WAIT_SECONDS = 10.0
ALONE_SECONDS = 1.0  # another association seen this recently: files go through the writer (batched)
COMMIT_WAIT_SECONDS = 30.0  # an association's thread gives up on its row's commit (failure status) after this


@dataclass
class _PinRequest:
    pk: int
    key: tuple
    timestamp: str
    folder: str
    now: Any
    result: bool | None = None


class RowWriter:
    """See the module docstring. ``pinned()`` and ``add()`` are called from the associations' threads."""

    def __init__(self, *, max_age: float = 0.1, max_rows: int = 100, lone_path: bool = True,
                 every_association: bool = False):
        self.max_age, self.max_rows, self.lone_path = max_age, max_rows, lone_path
        self.every_association = lone_path and every_association
        self._seen: dict[int, float] = {}     # thread -> when it last asked ``alone`` (monotonic)
        self._cv = threading.Condition()
        self._requests: deque[_PinRequest] = deque()
        self._pins: set[int] = set()          # sessions locked by the open transaction
        self._pending: list = []              # intake._Pending, their files in place
        self._keys: set[tuple[int, str]] = set()
        self._holders = 0                     # threads between a granted pin and add()
        self._busy = False                    # the writer is using the database: no new holders
        self._opened: float | None = None     # when the open transaction began (monotonic)
        self._retry: list = []
        self._retry_at = 0.0
        self._stopping = False
        self._checked = 0.0                   # when _open last ran close_old_connections (monotonic)
        self._thread = threading.Thread(target=self._run, name="intake-rows", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the associations' side

    def alone(self) -> bool:
        """True when the calling thread is the only one using the writer (see the module docstring): its
        file then goes in by its own transaction. Only a matter of speed: both ways keep every guarantee."""
        if not self.lone_path:
            return False
        now = time.monotonic()
        me = threading.get_ident()
        with self._cv:
            if self.every_association:  # each association its own transactions (see the module docstring)
                return not (self._stopping or self._retry or self._pins or self._pending or self._requests
                            or self._holders)
            seen = self._seen
            seen[me] = now
            if len(seen) > 1:
                for ident, when in list(seen.items()):
                    if now - when > ALONE_SECONDS:
                        del seen[ident]
            return (len(seen) == 1 and not self._stopping and not self._retry and not self._pins
                    and not self._pending and not self._requests and not self._holders)

    @contextmanager
    def pinned(self, *, pk: int, key: tuple, timestamp: str, folder: str, sop_uid: str, now) -> Iterator[bool]:
        """True for the block when the session's row is locked by the writer's transaction and stays so
        until the block has ended (the file then goes into the folder and its row to ``add``); False: the
        caller takes the per-file path."""
        ok = False
        with self._cv:
            while self._busy:
                self._cv.wait()
            if self._stopping or self._retry or (pk, sop_uid) in self._keys:
                pass  # (a second copy of a waiting instance: after the commit, on the per-file path)
            elif pk in self._pins:
                self._holders += 1
                ok = True
            else:
                request = _PinRequest(pk, key, timestamp, folder, now)
                self._requests.append(request)
                self._cv.notify_all()
                deadline = time.monotonic() + PIN_WAIT_SECONDS
                while request.result is None and time.monotonic() < deadline:
                    self._cv.wait(deadline - time.monotonic())
                if request.result is None:  # not answered in time: the writer may not grant it any more
                    request.result = False
                ok = request.result  # when granted, the writer counted this thread as a holder
        try:
            yield ok
        finally:
            if ok:
                with self._cv:
                    self._holders -= 1
                    self._cv.notify_all()

    def add(self, pending) -> None:
        """The row of a file put into its folder under ``pinned()``; then ``wait`` (after the block)."""
        with self._cv:
            pending.durable = None
            self._pending.append(pending)
            self._keys.add((pending.pk, pending.sop_uid))
            if len(self._pending) >= self.max_rows:
                self._cv.notify_all()

    def wait(self, pending, timeout: float = COMMIT_WAIT_SECONDS) -> bool:
        """True once the row of ``pending`` (handed to ``add``) is committed; False if it could not be
        (the database failed; the row is still retried) or not within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while pending.durable is None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return bool(pending.durable)

    def _settle(self, items: list, ok: bool) -> None:
        """Tell the threads waiting on ``items`` whether their rows are committed (the first answer counts)."""
        if not items:
            return
        with self._cv:
            for item in items:
                if getattr(item, "durable", False) is None:
                    item.durable = ok
            self._cv.notify_all()

    def stop(self, timeout: float = 30.0) -> None:
        """Write what waits (the receiver is stopping) and end the thread."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout)

    # ------------------------------------------------------------------ the writer's thread

    def _due(self, now: float) -> bool:
        """Commit now: every thread let in has handed over its row (they all wait for this commit), or
        the batch is full or old enough, or the receiver stops; or rows whose transaction failed while
        their files went in (a pin of the same transaction failed meanwhile) wait for the general path."""
        if self._opened is None:
            return bool(self._pending) and not self._holders
        return (self._stopping or len(self._pending) >= self.max_rows or (bool(self._pending) and not self._holders)
                or now - self._opened >= self.max_age)

    def _retry_due(self, now: float) -> bool:
        return bool(self._retry) and self._opened is None and (self._stopping or now >= self._retry_at)

    def _wait_seconds(self, now: float) -> float | None:
        times = []
        if self._opened is not None:
            times.append(self._opened + self.max_age - now)
        if self._retry:
            times.append(self._retry_at - now)
        return max(min(times), 0.001) if times else None

    def _run(self) -> None:
        try:
            while True:
                with self._cv:
                    while True:
                        now = time.monotonic()
                        if self._requests or self._due(now) or self._retry_due(now) or self._stopping:
                            break
                        self._cv.wait(self._wait_seconds(now))
                    if self._stopping:
                        for request in self._requests:
                            request.result = False
                        self._requests.clear()
                        self._cv.notify_all()
                        if self._opened is None and not self._retry and not self._pending:
                            return
                    pending, retry, committing = [], [], self._due(now) or self._retry_due(now) or self._stopping
                    if committing:  # the commit ends the pins: no new holders; the granted ones finish first
                        self._busy = True
                        while self._holders:
                            self._cv.wait()
                        now = time.monotonic()
                        if self._due(now):
                            pending, self._pending, self._keys, self._pins = self._pending, [], set(), set()
                        if self._retry_due(now):
                            retry, self._retry = self._retry, []
                    # Otherwise a file is going into its folder (a holder): the pins asked for meanwhile join
                    # the open transaction at once, and its commit, which waits for that holder anyway.
                    requests = list(self._requests)
                    self._requests.clear()
                granted: list[_PinRequest] = []
                try:
                    if pending and self._opened is None:  # their transaction failed while they were placed
                        self._general(pending)
                    elif pending:
                        self._commit(pending)
                    elif committing and self._opened is not None and not self._pins and not self._pending:
                        self._abandon()  # nothing pinned any more (a due flush with no rows)
                    if retry:
                        self._general(retry, stopping=self._stopping)
                    granted = self._pins_take(requests)
                finally:
                    with self._cv:
                        for request in requests:
                            request.result = request in granted if request.result is None else False
                            if request.result:
                                self._pins.add(request.pk)
                                self._holders += 1
                        self._busy = False
                        self._cv.notify_all()
        except BaseException:  # a bug: say so; what waits is lost to the database only (files in place)
            logger.exception("intake row writer stopped on an error")
            with self._cv:
                self._stopping = True
                self._busy = False
                for request in self._requests:
                    request.result = False
                for item in self._pending + self._retry:
                    if getattr(item, "durable", False) is None:
                        item.durable = False
                self._cv.notify_all()
            raise
        finally:
            connection.close()

    def _pins_take(self, requests: list[_PinRequest]) -> list[_PinRequest]:
        granted = []
        for request in requests:
            ok = self._pin(request)
            if ok is None:  # the database failed: the open transaction (and its pins) is gone
                self._pending_to_general()
                return []
            if ok:
                granted.append(request)
        return granted

    def _pending_to_general(self) -> None:
        with self._cv:
            pending, self._pending, self._keys, self._pins = self._pending, [], set(), set()
        if pending:
            self._general(pending)

    def _open(self) -> None:
        """Begin the transaction that holds the pins (its commit is synchronous: the senders wait for it).
        The connection is checked (close_old_connections: with health checks on, a round trip on the next
        statement) at most once a second, and whenever it has seen an error; a connection that broke
        meanwhile fails the pin, which closes it (``_abandon``), and the next one is new."""
        now = time.monotonic()
        if connection.connection is None or connection.errors_occurred or now - self._checked >= CONNECTION_CHECK_SECONDS:
            close_old_connections()
            self._checked = now
        connection.set_autocommit(False)
        self._opened = time.monotonic()

    def _pin(self, request: _PinRequest) -> bool | None:
        """Lock the session's row in the open transaction if it is still what the fast path would touch."""
        from . import fastpath

        q = connection.ops.quote_name
        table = q(PrearchiveSession._meta.db_table)
        project_id, tag, name = request.key
        try:
            if self._opened is None:
                self._open()
            with connection.cursor() as cursor:
                cursor.execute(
                    f"UPDATE {table} SET {q('lastmod')} = %s WHERE {q('id')} = (SELECT {q('id')} FROM {table} "
                    f"WHERE {fastpath.session_match_sql()} FOR NO KEY UPDATE SKIP LOCKED) RETURNING {q('id')}",
                    [request.now, request.pk, project_id, tag, name, request.timestamp, request.folder])
                return cursor.fetchone() is not None
        except Exception as exc:  # noqa: BLE001 - the database is away: the per-file path says so
            logger.warning("intake row writer could not pin a session: %s", type(exc).__name__)
            self._abandon()
            return None

    def _abandon(self) -> None:
        """Roll the open transaction back (nothing of it to keep: its rows go the general way)."""
        try:
            if connection.connection is not None and not connection.get_autocommit():
                connection.rollback()
            connection.set_autocommit(True)
        except Exception:  # noqa: BLE001 - a broken connection: a new one next time
            connection.close()
        self._opened = None

    def _commit(self, pending: list) -> None:
        from . import intake

        try:
            later = intake.pending_rows_write(pending)
            connection.commit()
            connection.set_autocommit(True)
            self._opened = None
        except Exception as exc:  # noqa: BLE001 - the rows go the general way (see the module docstring)
            logger.error("intake row writer: %d rows not written together (%s); writing them one by one",
                         len(pending), type(exc).__name__)
            self._abandon()
            later = pending
        if later is not pending:
            left = {id(item) for item in later}
            self._settle([item for item in pending if id(item) not in left], True)
        if later:
            self._general(later)

    def _general(self, items: list, *, stopping: bool = False) -> None:
        """Intake's general path for files already in place (a duplicate instance, a failed commit)."""
        from . import intake

        for n, item in enumerate(items):
            try:
                intake.pending_store_general(item, keep_file=True)  # never removed: it may replace a stored copy
            except Exception as exc:  # noqa: BLE001 - kept, retried every second
                close_old_connections()
                rest = items[n:]
                self._settle(rest, False)  # their senders get a failure status and send them again
                if stopping:
                    logger.error("intake row writer stopped with %d rows not written (%s); their files are in "
                                 "place: run reload_prearchive", len(rest), type(exc).__name__)
                    return
                logger.error("intake row writer: %d rows wait for the database (%s); their files are in place",
                             len(rest), type(exc).__name__)
                with self._cv:
                    self._retry = rest + self._retry
                    self._retry_at = time.monotonic() + RETRY_SECONDS
                return
            self._settle([item], True)


_WRITER: RowWriter | None = None
_WRITER_LOCK = threading.Lock()


def writer_get() -> RowWriter | None:
    """The process's writer (started on first use), or None where rows are written file by file: not
    PostgreSQL, or DICOM_RECEIVER_ROW_BATCH_SECONDS set to 0."""
    global _WRITER
    if _WRITER is not None:  # every C-STORE asks
        return _WRITER
    max_age = float(getattr(settings, "DICOM_RECEIVER_ROW_BATCH_SECONDS", 0.1) or 0)
    if max_age <= 0 or connection.vendor != "postgresql":
        return None
    with _WRITER_LOCK:
        if _WRITER is None:
            _WRITER = RowWriter(max_age=max_age,
                                every_association=getattr(settings, "DICOM_RECEIVER_OWN_TRANSACTIONS", True))
        return _WRITER


def writer_stop() -> None:
    global _WRITER
    with _WRITER_LOCK:
        writer, _WRITER = _WRITER, None
    if writer is not None:
        writer.stop()
