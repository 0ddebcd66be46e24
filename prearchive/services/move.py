"""Move a prearchive session to another project's prearchive (XNAT ``action=move`` / services/prearchive/move).

Request: READY|CONFLICT|ERROR|RECEIVING -> QUEUED_MOVING, the job file names the new project. Job: the folder
and its documents are renamed into ``{newProject}/{timestamp}/{folder}``; then one conditional UPDATE from
MOVING sets the project and QUEUED_BUILDING (the session document names the project, so it is rebuilt). If
files arrived meanwhile (RECEIVING_INTERRUPT) the folder goes back and the session is RECEIVING, every file
in place. Each step is recognisable on disk, so a retried job finishes what a killed one started.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from prearchive.models import UNASSIGNED, PrearchiveSession
from prearchive.services import storage
from prearchive.services.jobfile import job_read, job_remove, job_write, session_claim
from prearchive.services.joblock import job_lock
from xnatlite.models import Project
from xnatlite.services import audit_record

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status
MOVABLE = (Status.READY, Status.CONFLICT, Status.ERROR, Status.RECEIVING)
MSG_BUSY = "Operation already in progress on this prearchive entry."
MSG_TAKEN = "The prearchive of project {project} already holds this session ({label}); it was not moved."


class MoveError(Exception):
    pass


def session_move_request(*, session: PrearchiveSession, new_project: str, actor: str) -> None:
    if not Project.objects.filter(pk=new_project).exists():
        raise MoveError(f"No project with the ID {new_project}.")
    if new_project == session.project_id:
        raise MoveError(f"The session is already in project {new_project}.")
    with transaction.atomic():
        claimed = PrearchiveSession.objects.filter(pk=session.pk, status__in=MOVABLE).update(
            status=Status.QUEUED_MOVING, lastmod=timezone.now())
        if not claimed:
            raise MoveError(MSG_BUSY)
        job_write(session=session, data={"op": "move", "project": new_project, "actor": actor})

        def enqueue(session_id: int = session.pk) -> None:
            from xnatlite.archive.tasks import session_move_task

            session_move_task.delay(session_id)

        transaction.on_commit(enqueue)


def _paths(session: PrearchiveSession, project_id: str) -> tuple[Path, Path]:
    root = Path(settings.PREARCHIVE_ROOT)
    src = root / session.relative_dir
    dst = root / project_id / session.timestamp / session.folder_name
    return src, dst


def _merge_move(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; if ``dst`` exists, move what is missing there file by file."""
    if not src.exists():
        return
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(src, dst)
        return
    for folder, _dirs, names in os.walk(src):
        rel = Path(folder).relative_to(src)
        for name in names:
            target = dst / rel / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                os.replace(Path(folder) / name, target)
    shutil.rmtree(src, ignore_errors=True)


def _session_move_files(src: Path, dst: Path) -> None:
    """The session folder (merged into ``dst``) and its documents."""
    _merge_move(src, dst)
    for suffix in storage.DOCUMENT_SUFFIXES:
        old = src.with_name(src.name + suffix)
        if old.exists():
            os.replace(old, dst.with_name(dst.name + suffix))


def session_move(*, session_id: int) -> str:
    with job_lock("session", session_id) as got:
        if not got:
            return "busy"
        session = session_claim(session_id=session_id, queued=Status.QUEUED_MOVING, running=Status.MOVING)
        if session is None:
            return "skipped"
        job = job_read(session) or {}
        new_project = job.get("project")
        if session.status == Status.RECEIVING_INTERRUPT and job.get("op") == "move":
            return _back(session, new_project)
        if session.status != Status.MOVING:
            return "skipped"
        resting = Status.READY if session.built_at else Status.RECEIVING
        if not new_project or PrearchiveSession.objects.filter(
                project_id=new_project, tag=session.tag, name=session.name).exclude(pk=session.pk).exists() \
                or PrearchiveSession.objects.filter(project_id=new_project, timestamp=session.timestamp,
                                                    folder_name=session.folder_name).exists():
            PrearchiveSession.objects.filter(pk=session_id, status=Status.MOVING).update(
                status=resting, error_message=MSG_TAKEN.format(project=new_project, label=session.name))
            job_remove(session)
            return "error"
        src, dst = _paths(session, new_project)
        _session_move_files(src, dst)
        old_project = session.project_id
        with transaction.atomic():
            moved = PrearchiveSession.objects.filter(pk=session_id, status=Status.MOVING).update(
                project_id=new_project, status=Status.QUEUED_BUILDING, lastmod=timezone.now(), error_message="")
            if not moved:
                transaction.set_rollback(True)
        if not moved:
            return _back(session, new_project)  # which moves everything back
        job_remove(session)
        # Stored under the project it went to (a move out of Unassigned has no old project), the old one kept.
        audit_record(actor=job.get("actor", ""), action="prearchive_move", project_id=new_project,
                     subject_label=session.subject, session_label=session.name, new_project=new_project,
                     old_project=old_project or UNASSIGNED, prearchive=session.uri)

        def build(session_id: int = session_id) -> None:
            from prearchive.tasks import session_build_enqueue

            session_build_enqueue(session_id=session_id)

        transaction.on_commit(build)
        logger.info("prearchive session %s moved to another project", session_id)
        return "moved"


def _back(session: PrearchiveSession, new_project: str | None) -> str:
    if new_project:
        src, dst = _paths(session, new_project)
        _session_move_files(dst, src)
    PrearchiveSession.objects.filter(pk=session.pk, status=Status.RECEIVING_INTERRUPT).update(
        status=Status.RECEIVING, lastmod=timezone.now())
    job_remove(session)
    return "interrupted"
