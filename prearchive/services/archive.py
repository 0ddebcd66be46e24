"""The archive job: prearchive session -> archived ImageSession (reference/xnat.md §3, §7; DESIGN §4.5).

1. Request (``session_archive_request`` / ``session_archive_enqueue``): claim READY|CONFLICT|ERROR ->
   QUEUED_ARCHIVING by conditional UPDATE, write the request beside the session (jobfile.py), enqueue the
   task on commit with the session id only.
2. Job (``session_archive``): take the session's job lock (a PostgreSQL advisory lock: a killed worker's lock
   is released with its connection), claim QUEUED_ARCHIVING -> ARCHIVING (or resume ARCHIVING: the lock says
   its worker is dead), then by step, each of which a retried job recognises and skips:
   a. validate against the archive (conflicts.py) -> CONFLICT with the reasons, or ERROR (no script, ...);
   b. write every file through the project's anonymization script, with the final labels, into a partial
      folder (archive_tree.py), stopping if files arrive (RECEIVING_INTERRUPT -> RECEIVING, nothing changed);
   c. swap the partial folder into ``ARCHIVE_ROOT/{project}/arc001/{label}``;
   d. record Subject, ImageSession and Scans and the AuditEvent, in one transaction;
   e. only then remove the archived files from the prearchive and the session row (or, if files arrived
      meanwhile, leave those files and set the session RECEIVING).
Logs carry ids, counts and UIDs only.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.db import transaction
from django.utils import timezone

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import archive_tree as tree
from prearchive.services import residual, script_state, storage
from prearchive.services.archive_record import session_record
from prearchive.services.conflicts import (ScanKey, overwrite_normalize, scan_renames, series_scan_ids,
                                          session_conflicts)
from prearchive.services.idle import idle_countdown_on_commit
from prearchive.services.jobfile import job_read, job_remove, job_write, session_claim, session_dir
from prearchive.services.joblock import job_lock
from xnatlite.models import ImageSession, Project
from xnatlite.selectors import site_config_get
from xnatlite.services import audit_record

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status

ARCHIVABLE = (Status.READY, Status.CONFLICT, Status.ERROR)
MSG_IN_PROGRESS = "Operation already in progress on this prearchive entry."
MSG_CONFLICT_NEEDS_OVERWRITE = ("This session is in CONFLICT ({reason}). It is archived only with an explicit "
                                "overwrite choice: append or delete.")
MSG_SCRIPT = "The project's anonymization script does not compile ({detail}); nothing was archived."
MSG_SCRIPT_FAILED = "The project's anonymization script failed on a file ({detail}); nothing was archived."
MSG_FAILED = "The session could not be archived ({error}); it is still in the prearchive."
MSG_UNREADABLE_ORPHANS = ("{count} file(s) in the session folder have no row and cannot be read; nothing was "
                          "archived and they were left in place.")
MSG_RESIDUAL_REFUSED = ("Not archived: the site refuses sessions with residual PHI (residualPhiRefuseArchive); "
                        "fix the project's anonymization script, then archive again.")
TASK = "prearchive.session_archive"


class ArchiveError(Exception):
    """The request cannot be queued (shown to the user as is)."""


class ArchiveConflict(ArchiveError):
    """A CONFLICT session asked to be archived without an overwrite choice (REST: 409)."""


@dataclass(frozen=True)
class Target:
    project_id: str | None
    subject: str
    label: str
    overwrite: str
    tracer: str
    quarantine: bool | None
    actor: str


def _enqueue(session_id: int) -> None:
    from xnatlite.archive.tasks import session_archive_task

    transaction.on_commit(lambda: session_archive_task.delay(session_id))


def _default_overwrite(session: PrearchiveSession) -> str:
    if session.overwrite:  # the import asked for it (overwrite=append|delete)
        return session.overwrite
    code = session.autoarchive
    if code is None and session.project_id:
        code = Project.objects.filter(pk=session.project_id).values_list("prearchive_code", flat=True).first()
    return {4: "append", 5: "delete"}.get(code, "none")


def _received_file_user() -> str:
    """receivedFileUser: the account operations on incoming data run as (XNAT); auto-archive records it."""
    from xnatlite.selectors import site_config_get

    return site_config_get().received_file_user or "admin"


def session_archive_enqueue(*, session_id: int, actor: str = "") -> None:
    """Auto-archive hook (the builder): READY -> QUEUED_ARCHIVING and the job on commit; a no-op when the
    session is not READY (someone else owns it)."""
    with transaction.atomic():
        session = PrearchiveSession.objects.filter(pk=session_id).first()
        if session is None:
            return
        claimed = PrearchiveSession.objects.filter(pk=session_id, status=Status.READY).update(
            status=Status.QUEUED_ARCHIVING, lastmod=timezone.now(), error_message="")
        if not claimed:
            return
        job_write(session=session, data={"op": "archive", "actor": actor or _received_file_user(),
                                         "overwrite": _default_overwrite(session)})
        _enqueue(session_id)


def session_archive_request(*, session: PrearchiveSession, actor: str, project_id: str | None = None,
                            subject: str | None = None, label: str | None = None, overwrite: str = "none",
                            tracer: str = "", quarantine: bool | None = None) -> None:
    """Queue the archive of ``session`` under the given (final) labels. Raises ArchiveError if the session
    is not in a status that may be archived; ArchiveConflict if it is in CONFLICT and ``overwrite`` is none
    (XNAT: a conflict is overridden only by the overwrite flag)."""
    allowed = ARCHIVABLE if overwrite_normalize(overwrite) != "none" else (Status.READY, Status.ERROR)
    with transaction.atomic():
        claimed = PrearchiveSession.objects.filter(pk=session.pk, status__in=allowed).update(
            status=Status.QUEUED_ARCHIVING, lastmod=timezone.now(), error_message="")
        if not claimed:
            current = PrearchiveSession.objects.filter(pk=session.pk).values_list(
                "status", "error_message").first()
            if current is not None and current[0] == Status.CONFLICT:
                reason = current[1].strip().splitlines()[0] if current[1].strip() else "see the review page"
                raise ArchiveConflict(MSG_CONFLICT_NEEDS_OVERWRITE.format(reason=reason.rstrip(".")))
            raise ArchiveError(MSG_IN_PROGRESS)
        job_write(session=session, data={
            "op": "archive", "actor": actor, "project": project_id or session.project_id or "",
            "subject": subject if subject else session.subject, "label": label if label else session.name,
            "overwrite": overwrite_normalize(overwrite), "tracer": tracer or "", "quarantine": quarantine,
        })
        _enqueue(session.pk)


def session_commit(*, session: PrearchiveSession, actor: str, subject: str = "", label: str = "",
                   tracer: str = "", overwrite: str = "") -> str | None:
    """``?action=commit`` (XNAT: finish the upload): build now; an auto-archive session is archived with the
    request's subject, label, tracer and overwrite; any other stays READY and keeps them for its archive
    (subject, label and overwrite on the row; the tracer as the session's tracer). Returns the build's
    status (None: someone else owns the session)."""
    from prearchive.services.builder import auto_archive_wanted, session_build

    S = Status
    status = session_build(session_id=session.pk, auto_archive=False,
                           expected=(S.RECEIVING, S.READY, S.CONFLICT, S.ERROR, S.QUEUED_BUILDING))
    if status != S.READY:
        return status
    row = PrearchiveSession.objects.select_related("project").get(pk=session.pk)
    if auto_archive_wanted(row):
        session_archive_request(session=row, actor=actor or "auto-archive", subject=subject or None,
                                label=label or None, tracer=tracer,
                                overwrite=overwrite_normalize(overwrite) if overwrite else _default_overwrite(row))
        return S.QUEUED_ARCHIVING
    changes: dict[str, Any] = {}
    if subject:
        changes["subject"] = subject
    if label and not PrearchiveSession.objects.filter(project_id=row.project_id, tag=row.tag, name=label).exclude(
            pk=row.pk).exists():
        changes["name"] = label
    if tracer:
        changes["pet_tracer"] = tracer
    if overwrite:
        changes["overwrite"] = overwrite_normalize(overwrite)
    if changes:
        PrearchiveSession.objects.filter(pk=row.pk, status=S.READY).update(**changes)
    return status


def target_for(session: PrearchiveSession) -> Target:
    job = job_read(session) or {}
    return Target(
        project_id=job.get("project") or session.project_id, subject=job.get("subject") or session.subject,
        label=job.get("label") or session.name,
        overwrite=overwrite_normalize(job.get("overwrite") or _default_overwrite(session)),
        tracer=job.get("tracer") or session.pet_tracer or "", quarantine=job.get("quarantine"),
        actor=job.get("actor") or "",
    )


def archive_uri(project_id: str, subject: str, label: str) -> str:
    return f"/data/archive/projects/{project_id}/subjects/{subject}/experiments/{label}"


# ------------------------------------------------------------------ the job


def session_archive(*, session_id: int) -> str:
    """Run (or resume) the archive of one session. Returns what happened: "archived", "conflict",
    "error", "interrupted", "busy" (another live job owns it) or "skipped" (nothing to do)."""
    with job_lock("session", session_id) as got:
        if not got:
            return "busy"
        session = session_claim(session_id=session_id, queued=Status.QUEUED_ARCHIVING, running=Status.ARCHIVING)
        if session is None:
            return "skipped"
        if session.status == Status.RECEIVING_INTERRUPT and job_read(session) is not None:
            return _interrupted(session, None)
        if session.status != Status.ARCHIVING:
            return "skipped"
        target = target_for(session)
        try:
            return _archive(session, target)
        except tree.JobInterrupted:
            return _interrupted(session, target)
        except _Stop as stop:
            return _finish_failed(session, stop.status, stop.message)
        except (OSError,) as exc:
            logger.warning("archive of prearchive session %s hit a storage error: %s", session_id,
                           type(exc).__name__)
            raise  # transient: the task retries; the job resumes
        except Exception as exc:  # noqa: BLE001 - never leave a session stuck in ARCHIVING
            logger.exception("archive of prearchive session %s failed", session_id)
            return _finish_failed(session, Status.ERROR, MSG_FAILED.format(error=type(exc).__name__))


class _Stop(Exception):
    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _op_id(session: PrearchiveSession) -> str:
    return f"{session.pk}-{session.timestamp}"


def _adopt(session: PrearchiveSession):
    """Files in the folder without a row (a receiver died before their row's commit) get rows: the archive
    copies them too, and the cleanup never removes a file no row names (issue 16)."""
    from prearchive.services.reload import session_files_adopt

    return session_files_adopt(session=session)


def _archive(session: PrearchiveSession, target: Target) -> str:
    if not target.project_id:
        raise _Stop(Status.CONFLICT, "FAIL-6: unable to identify destination project")
    swapped = tree.marker_read(tree.archive_dirs(project_id=target.project_id, label=target.label,
                                                 job_id=session.pk).final) or {}
    if swapped.get("op") != _op_id(session):
        adopted = _adopt(session)  # before the copy is taken (a resumed job past the swap has its list)
        if adopted.unreadable:
            raise _Stop(Status.ERROR, MSG_UNREADABLE_ORPHANS.format(count=adopted.unreadable))
    dirs = tree.archive_dirs(project_id=target.project_id, label=target.label, job_id=session.pk)
    op = _op_id(session)
    with job_lock("destination", f"{target.project_id}/{target.label}", wait=True):
        existing = ImageSession.objects.filter(project_id=target.project_id, label=target.label).first()
        if existing is not None and op in (existing.document or {}).get("prearchive_ops", []):
            return _cleanup(session, target, existing, dirs)  # recorded; the prearchive copy remains
        marker = tree.marker_read(dirs.final)
        if marker is None or marker.get("op") != op:
            partial = tree.marker_read(dirs.partial)
            if partial is None or partial.get("op") != op or dirs.final.exists() or not dirs.old.exists():
                _write(session, target, dirs, op)  # fresh, or resuming a write
            tree.tree_swap(dirs)
        marker = tree.marker_read(dirs.final) or {}
        record = session_record(session=session, target=target, dirs=dirs, op=op,
                                renames=marker.get("renames", {}), notices=marker.get("notices", []),
                                rejected=marker.get("rejected", 0))
    residual.findings_archived(session_id=session.pk, image_session_id=record.pk)
    return _cleanup(session, target, record, dirs)


def _scan_keys(ids: dict[tuple[str, str], str]) -> list[ScanKey]:
    """One key per scan of the session (series_scan_ids: a shared SeriesNumber is two scans, never one)."""
    seen: dict[str, str] = {}
    for (_folder, uid), scan_id in sorted(ids.items()):
        if uid or scan_id not in seen:
            seen[scan_id] = uid
    return [ScanKey(scan_id=k, uid=v) for k, v in sorted(seen.items())]


def _write(session: PrearchiveSession, target: Target, dirs: tree.ArchiveDirs, op: str) -> None:
    ids = series_scan_ids(session_id=session.pk)
    scans = _scan_keys(ids)
    partial_marker = tree.marker_read(dirs.partial)
    if partial_marker is None or partial_marker.get("op") != op:
        tree.tree_discard(dirs.partial)  # a stale partial of an earlier attempt
        notices = session_conflicts(project_id=target.project_id, subject=target.subject, label=target.label,
                                    study_uid=session.tag, session_type=session.session_type, scans=scans,
                                    overwrite=target.overwrite)
        if notices:
            raise _Stop(Status.CONFLICT, "\n".join(str(n) for n in notices))
        renames = (scan_renames(project_id=target.project_id, label=target.label, scans=scans)
                   if target.overwrite == "append" else {})
        tree.marker_write(dirs.partial, {"op": op, "renames": renames, "overwrite": target.overwrite})
    renames = (tree.marker_read(dirs.partial) or {}).get("renames", {})
    # The uploader already applied the site and project scripts (prevent_anon, as XNAT's Desktop Client
    # does; seed 003: not repeated server side). Only a change of labels at archive time re-runs it.
    client_anonymized = session.prevent_anon and (target.project_id, target.subject, target.label) == (
        session.project_id, session.subject, session.name)
    script = None if client_anonymized else _project_script(target.project_id)
    variables = {"project": target.project_id, "subject": target.subject, "session": target.label,
                 "modalityLabel": _modality_label(session)}
    # One script context for the session's archive job, its memos (mapReferencedUIDs, mapUID) in the database:
    # a job resumed after a crash maps each value as the files it wrote before did (services/script_state.py).
    state = _script_context(session, target)
    run = state.run
    base = session_dir(session)
    rows = list(PrearchiveFile.objects.filter(session=session).order_by("scan_id", "instance_number", "pk")
                .values_list("pk", "relative_path", "scan_id", "series_instance_uid"))
    files = [tree.FileJob(source=base / rel,
                          dest=f"SCANS/{scan_id_final(ids, renames, folder, uid)}/DICOM/{Path(rel).name}")
             for _pk, rel, folder, uid in rows]
    rejected = 0
    # The residual-PHI check reads each dataset as it will be written (after the last script pass).
    check = residual.ResidualCheck.for_session(session.pk)
    check.labels(subject=target.subject, session=target.label)
    current = {"scan": ""}

    def jobs():
        for job in files:
            current["scan"] = job.dest.split("/")[1]
            yield job

    def transform(ds) -> bool:
        nonlocal rejected
        if script is not None:
            try:
                result = script.apply(ds, variables=variables, run=run)
            except Exception as exc:  # noqa: BLE001 - a script failing on a file stops the archive
                state.discard()
                raise _Stop(Status.ERROR, MSG_SCRIPT_FAILED.format(detail=_first_line(exc))) from None
            state.commit()  # before the file is written: one job at a time per session (its lock)
            script_state.session_notes_add(session_id=session.pk, origin="project script",
                                           lines=state.take_echoes())
            if getattr(result, "rejected", False):
                rejected += 1
                return False
        check.file(ds, current["scan"])
        return True

    def should_stop() -> bool:
        return not PrearchiveSession.objects.filter(pk=session.pk, status=Status.ARCHIVING).exists()

    written, _ = tree.tree_write(dirs=dirs, files=jobs(), transform=transform,
                                 merge_existing=target.overwrite == "append", should_stop=should_stop)
    if should_stop():
        raise tree.JobInterrupted()
    findings = check.findings
    residual.findings_store(findings=findings, session_id=session.pk)
    if findings and site_config_get().residual_phi_refuse_archive:
        raise _Stop(Status.ERROR, "\n".join([f.message for f in findings] + [MSG_RESIDUAL_REFUSED]))
    marker = tree.marker_read(dirs.partial) or {}
    marker.update(op=op, files=written, rejected=rejected, file_ids=[row[0] for row in rows])
    tree.marker_write(dirs.partial, marker)
    logger.info("prearchive session %s: %d file(s) written to the archive, %d rejected", session.pk, written,
                rejected)


def scan_id_final(ids: dict[tuple[str, str], str], renames: dict[str, str], folder: str, uid: str | None) -> str:
    """The archived scan ID of a file: its series' scan in the session, then the append rename, if any."""
    scan_id = ids.get((folder, uid or ""), folder)
    return renames.get(scan_id, scan_id)


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _project_script(project_id: str):
    project = Project.objects.get(pk=project_id)
    if not project.anon_script_enabled or not project.anon_script.strip():
        return None
    try:
        from anonymization.services import script_compile

        return script_compile(text=project.anon_script)
    except ImportError:
        raise _Stop(Status.ERROR, MSG_SCRIPT.format(detail="the anonymization engine is not installed")) from None
    except Exception as exc:  # noqa: BLE001 - any compile failure means: do not archive
        raise _Stop(Status.ERROR, MSG_SCRIPT.format(detail=_first_line(exc))) from None


def _script_context(session: PrearchiveSession, target: Target) -> script_state.SessionScriptContext:
    """The project script's context for this session: its memos in the database, the project's and the
    site's lookup tables, the getURL setting; echo goes to the session's processing record."""
    return script_state.project_context(project_id=target.project_id, study_uid=session.tag)


def _modality_label(session: PrearchiveSession) -> str:
    modality = session.modality or (session.document or {}).get("modality", "")
    return {"PT": "PET"}.get(modality, modality)


# ------------------------------------------------------------------ endings


def _cleanup(session: PrearchiveSession, target: Target, record: ImageSession, dirs: tree.ArchiveDirs) -> str:
    """The archive copy is complete and recorded: write its scans' catalogs, remove the archived files from
    the prearchive."""
    _catalogs_write(record)
    marker = tree.marker_read(dirs.final)
    base = session_dir(session)
    if marker is not None:
        archived_ids = marker.get("file_ids") or []
        for rel in PrearchiveFile.objects.filter(pk__in=archived_ids).values_list("relative_path", flat=True):
            try:
                os.unlink(base / rel)
            except FileNotFoundError:
                pass
        PrearchiveFile.objects.filter(pk__in=archived_ids).delete()
        tree.marker_remove(dirs.final)
    tree.tree_discard(dirs.old)
    removed = False
    with transaction.atomic():
        row = PrearchiveSession.objects.select_for_update().filter(pk=session.pk).first()
        if row is None:
            return "archived"
        leftover = _adopt(session)  # the folder goes only if nothing in it lacks a row
        remaining = PrearchiveFile.objects.filter(session_id=session.pk).count()
        if remaining == 0 and leftover.unreadable:
            PrearchiveSession.objects.filter(pk=session.pk).update(
                status=Status.ERROR, file_count=0, lastmod=timezone.now(),
                error_message=MSG_UNREADABLE_ORPHANS.format(count=leftover.unreadable).replace(
                    "nothing was archived and they", "the rest was archived; they"))
            job_remove(session)
        elif remaining == 0:
            row.delete()
            removed = True
        else:  # files arrived after the archive copy was taken: they stay, to be built again
            PrearchiveSession.objects.filter(pk=session.pk).update(
                status=Status.RECEIVING, file_count=remaining, lastmod=timezone.now(), error_message="")
            job_remove(session)
    if removed:
        _remove_prearchive_folder(session)
    logger.info("prearchive session %s archived as session %s", session.pk, record.pk)
    return "archived"


def _catalogs_write(record: ImageSession) -> None:
    """Each scan's catalog (scan_{id}_catalog.xml) beside its files. The archive stands without them (they are
    written again when the session is next read through the data REST), so a failure is only logged."""
    from xnatlite.archive.data import session_catalogs_ensure

    try:
        session_catalogs_ensure(session=record, force=True)  # an append changed the scans' files
    except OSError as exc:
        logger.warning("session %s: scan catalogs not written (%s)", record.pk, type(exc).__name__)


def _remove_prearchive_folder(session: PrearchiveSession) -> None:
    base = session_dir(session)
    storage.session_folder_remove(base)
    job_remove(session)
    try:
        base.parent.rmdir()  # the timestamp folder, when empty
    except OSError:
        pass


def _interrupted(session: PrearchiveSession, target: Target | None) -> str:
    """New files arrived: leave every file where it is, discard the partial archive copy, RECEIVING."""
    if target is not None and target.project_id:
        tree.tree_discard(tree.archive_dirs(project_id=target.project_id, label=target.label,
                                            job_id=session.pk).partial)
    back = PrearchiveSession.objects.filter(pk=session.pk, status=Status.RECEIVING_INTERRUPT).update(
        status=Status.RECEIVING, lastmod=timezone.now())
    job_remove(session)
    if back:
        logger.info("prearchive session %s: files arrived during the archive; receiving again", session.pk)
        idle_countdown_on_commit(session.pk)
    return "interrupted"


def _finish_failed(session: PrearchiveSession, status: str, message: str) -> str:
    target = target_for(session)
    if target.project_id:
        tree.tree_discard(tree.archive_dirs(project_id=target.project_id, label=target.label,
                                            job_id=session.pk).partial)
    done = PrearchiveSession.objects.filter(pk=session.pk, status=Status.ARCHIVING).update(
        status=status, error_message=message, lastmod=timezone.now())
    job_remove(session)
    if not done:
        return _interrupted(session, None)
    logger.info("prearchive session %s not archived: %s", session.pk, status)
    audit_record(actor=target.actor, action="session_archive_failed", project_id=target.project_id or "",
                 subject_label=target.subject, session_label=target.label, reason=message)
    return "conflict" if status == Status.CONFLICT else "error"


def session_archive_progress(*, session: PrearchiveSession) -> dict[str, Any]:
    """{done, total} of a running archive job, counted from its partial folder."""
    total = session.file_count
    if session.status != Status.ARCHIVING:
        return {"done": 0, "total": total}
    target = target_for(session)
    if not target.project_id:
        return {"done": 0, "total": total}
    dirs = tree.archive_dirs(project_id=target.project_id, label=target.label, job_id=session.pk)
    scans = dirs.partial / "SCANS"
    done = tree.count_files(scans) if scans.is_dir() else 0
    return {"done": min(done, total) if total else done, "total": total}
