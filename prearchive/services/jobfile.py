"""The request of a queued prearchive operation, kept beside the session on disk.

``{PREARCHIVE_ROOT}/{project}/{timestamp}/{folder}.job.json`` (a sibling of the session document) holds what
the reviewer asked for (destination labels, overwrite mode, tracer, who asked), so that task messages carry
only the session id and a job taken over after a worker died still knows what to do. Labels only, no PHI.
Written atomically; removed when the operation ends.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings

from prearchive.models import PrearchiveSession


def job_path(session: PrearchiveSession) -> Path:
    return Path(settings.PREARCHIVE_ROOT) / (session.relative_dir + ".job.json")


def session_dir(session: PrearchiveSession) -> Path:
    return Path(settings.PREARCHIVE_ROOT) / session.relative_dir


def job_write(*, session: PrearchiveSession, data: dict[str, Any]) -> None:
    path = job_path(session)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def job_read(session: PrearchiveSession) -> dict[str, Any] | None:
    try:
        with open(job_path(session), encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def job_remove(session: PrearchiveSession) -> None:
    try:
        os.unlink(job_path(session))
    except FileNotFoundError:
        pass


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def session_claim(*, session_id: int, queued: str, running: str):
    """The session a job is about to work on, with a QUEUED_<x> status claimed as <x> by a conditional
    update (a second worker finds it already claimed). None when the session is gone."""
    from django.utils import timezone

    from prearchive.models import PrearchiveSession

    session = PrearchiveSession.objects.filter(pk=session_id).first()
    if session is not None and session.status == queued:
        PrearchiveSession.objects.filter(pk=session_id, status=queued).update(status=running,
                                                                              lastmod=timezone.now())
        session.refresh_from_db()
    return session
