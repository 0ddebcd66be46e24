"""Job ownership that survives a killed worker.

A PostgreSQL session-level advisory lock belongs to the worker's database connection: if the worker is
killed (SIGKILL, OOM, power), PostgreSQL drops the connection and the lock with it. So "status ARCHIVING and
the lock is free" means the job's worker is dead and the job may be taken over; "the lock is held" means a
live worker owns it. On SQLite (the embedded default, one machine) there is nothing to lock: jobs run one at
a time per session because the status claim is a conditional UPDATE, and a restart recovers all.
"""
from __future__ import annotations

import zlib
from contextlib import contextmanager
from typing import Iterator

from django.db import connection

# First key of the two-int advisory lock: one namespace per kind of job.
NAMESPACES = {"session": 7401, "destination": 7402}


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
        yield True
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


def job_lock_free(kind: str, ident: str | int) -> bool:
    """True if no live job holds the lock (checked by taking and releasing it at once)."""
    with job_lock(kind, ident) as got:
        return got
