"""Job ownership that survives a killed worker.

A PostgreSQL session-level advisory lock belongs to the worker's database connection: if the worker is
killed (SIGKILL, OOM, power), PostgreSQL drops the connection and the lock with it. So "status ARCHIVING and
the lock is free" means the job's worker is dead and the job may be taken over; "the lock is held" means a
live worker owns it.

On SQLite (the embedded default: one machine by construction) the same lease is an ``flock`` on a lock file
under ``VAR_DIR/locks``: the kernel holds it for the open file and drops it when the process dies, however
it dies, so "held" again means "a live job owns it" and the idle sweep never re-queues a job that still runs
(issue 16 item 9: with no lock at all, two archives of one session ran at once). Each ``job_lock`` opens the
file itself, so two threads of one worker (the threads pool) exclude each other as two processes do.
"""
from __future__ import annotations

import fcntl
import os
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from django.conf import settings
from django.db import connection

# First key of the two-int advisory lock: one namespace per kind of job.
NAMESPACES = {"session": 7401, "destination": 7402, "upload": 7403, "transfer": 7404,
              "archived-session": 7411, "archived-subject": 7412}  # the last two: xnatlite/archive/jobs.py


def _key(kind: str, ident: str | int) -> tuple[int, int]:
    if isinstance(ident, int):
        return NAMESPACES[kind], ident % 2_147_483_647
    return NAMESPACES[kind], zlib.crc32(str(ident).encode("utf-8")) % 2_147_483_647


def _postgres() -> bool:
    return connection.vendor == "postgresql"


@contextmanager
def job_lock(kind: str, ident: str | int, *, wait: bool = False) -> Iterator[bool]:
    """Hold the lock for the block; yields False (and holds nothing) if another live job has it."""
    if not _postgres():
        with _file_lock(kind, ident, wait=wait) as got:
            yield got
        return
    a, b = _key(kind, ident)
    with connection.cursor() as cur:
        if wait:
            cur.execute("SELECT pg_advisory_lock(%s, %s)", [a, b])
            got = True
        else:
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [a, b])
            got = bool(cur.fetchone()[0])
    try:
        yield got
    finally:
        if got:
            with connection.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s, %s)", [a, b])


def _lock_path(kind: str, ident: str | int) -> Path:
    a, b = _key(kind, ident)
    folder = Path(str(settings.VAR_DIR)) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{a}-{b}.lock"


@contextmanager
def _file_lock(kind: str, ident: str | int, *, wait: bool) -> Iterator[bool]:
    fd = os.open(_lock_path(kind, ident), os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
            got = True
        except BlockingIOError:
            got = False
        try:
            yield got
        finally:
            if got:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)  # the lock file stays: removing it would let a waiter lock an unlinked file


def job_lock_free(kind: str, ident: str | int) -> bool:
    """True if no live job holds the lock (checked by taking and releasing it at once)."""
    with job_lock(kind, ident) as got:
        return got
