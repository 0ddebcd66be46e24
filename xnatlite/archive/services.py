"""Writes on archived data and the project settings of the archive path.

Metadata edits (seed 003 "Anonymization During Metadata Edits"): changing a subject's label, a session's label,
moving a session to another project or assigning it to another subject re-runs the project's anonymization
script on the session's files with the new labels, when the site setting ``rerunProjectAnonOnRename`` is on.
Files are rewritten into a partial folder beside the session and renamed into place, so a failure leaves the
old files and labels. Every edit writes an AuditEvent (labels only, no PHI); an audit entry outlives what it
describes.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import ProtectedError
from pydicom import dcmread

from xnatlite.models import ID_VALIDATOR, ImageSession, Project, Subject
from xnatlite.selectors import site_config_get
from xnatlite.services import audit_record

ARC = "arc001"
CATALOG_SUFFIX = "_catalog.xml"  # a scan's catalog, SCANS/{id}/DICOM/scan_{id}_catalog.xml (data.py)


def archive_root() -> Path:
    return Path(str(settings.ARCHIVE_ROOT))


def session_folder(session: ImageSession) -> Path:
    return archive_root() / session.archive_path


# ------------------------------------------------------------------ project settings


def project_prearchive_code_set(*, project: Project, value: str, actor: str) -> int:
    """PUT /data/projects/{id}/prearchive_code/{code}: 0, 4, 5 (and true -> 1? XNAT maps true->1, false->0;
    1 is not a code we know, so true means AutoArchive here)."""
    text = str(value).strip().lower()
    mapped = {"true": 4, "false": 0}.get(text)
    if mapped is None:
        try:
            mapped = int(text)
        except ValueError:
            raise ValidationError("The prearchive code must be an integer.", code="invalid") from None
    if mapped not in (0, 4, 5):
        raise ValidationError("The prearchive code must be 0, 4 or 5.", code="invalid")
    if mapped and not site_config_get().project_allow_auto_archive:
        raise ValidationError("Projects may not auto-archive on this site.", code="forbidden")
    Project.objects.filter(pk=project.pk).update(prearchive_code=mapped)
    audit_record(actor=actor, action="project_prearchive_code", project_id=project.id, code=mapped)
    return mapped


def project_quarantine_code_set(*, project: Project, value: str, actor: str) -> int:
    mapped = {"true": 1, "false": 0, "1": 1, "0": 0}.get(str(value).strip().lower())
    if mapped is None:
        raise ValidationError("The quarantine code must be 0 or 1.", code="invalid")
    if mapped and not site_config_get().ui_allow_quarantine:
        raise ValidationError("Quarantine is not allowed on this site (uiAllowQuarantine is off).",
                              code="forbidden")
    Project.objects.filter(pk=project.pk).update(quarantine_code=mapped)
    audit_record(actor=actor, action="project_quarantine_code", project_id=project.id, code=mapped)
    return mapped


def project_anon_script_set(*, project: Project, actor: str, text: str | None = None,
                            enabled: bool | None = None) -> Project:
    """Change the project's anonymization script and/or its status. A script that does not compile is
    refused with ValidationError("LINE:COL: message") and nothing changes."""
    from anonymization.services import script_validate

    if text is not None and text.strip():
        script_validate(text=text, project_id=project.pk)
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        if text is not None:
            project.anon_script = text
        if enabled is not None:
            project.anon_script_enabled = enabled
        project.save(update_fields=["anon_script", "anon_script_enabled"])
        audit_record(actor=actor, action="project_anon_script", project_id=project.id,
                     enabled=project.anon_script_enabled, changed_text=text is not None)
    return project


# ------------------------------------------------------------------ re-anonymizing archived files
#
# These run inside a worker job (jobs.py), under the session's (or subject's) lock: every new file is written
# into a folder beside the old one first; only when all are written are the folders switched by rename, and
# only then does the database change. A script that does not compile or fails on a file raises ArchiveEditError
# and leaves the files and the database as they were.

MSG_SCRIPT_COMPILE = "The project's anonymization script does not compile ({detail}); nothing was changed."
MSG_SCRIPT_FAILED = "The project's anonymization script failed on a file ({detail}); nothing was changed."


class ArchiveEditError(Exception):
    """An edit of archived data that cannot be done; the message is shown to the user as is."""


def _first_line(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _script_for(project: Project):
    if not project.anon_script_enabled or not project.anon_script.strip():
        return None
    from anonymization.services import script_compile

    try:
        return script_compile(text=project.anon_script)
    except Exception as exc:  # noqa: BLE001 - any compile failure: change nothing
        raise ArchiveEditError(MSG_SCRIPT_COMPILE.format(detail=_first_line(exc))) from None


def count_files(folder: Path) -> int:
    return sum(1 for _f, _d, names in os.walk(folder) for name in names
               if not name.startswith(".") and not name.endswith(CATALOG_SUFFIX))


def _rewrite(*, src: Path, dst: Path, script, variables: dict[str, str], progress=None) -> None:
    """Copy the session folder ``src`` to ``dst`` (which must not exist), applying ``script`` to each DICOM
    file; written under a partial name and renamed into place. ``progress()`` after each file. On any
    failure the partial folder is removed and ``src`` is untouched."""
    from anonymization.services import run_context_for

    partial = dst.with_name(f".{dst.name}.rewrite")
    shutil.rmtree(partial, ignore_errors=True)
    run = run_context_for(project_id=variables.get("project") or None, echo=lambda text: None)
    try:
        for folder, _dirs, names in os.walk(src):
            rel = Path(folder).relative_to(src)
            for name in names:
                if name.startswith(".") or name.endswith(CATALOG_SUFFIX):  # catalogs: written again on access
                    continue
                out = partial / rel / name
                out.parent.mkdir(parents=True, exist_ok=True)
                source = Path(folder) / name
                if script is None:
                    shutil.copy2(source, out)
                else:
                    ds = dcmread(source)
                    try:
                        result = script.apply(ds, variables=variables, run=run)
                    except Exception as exc:  # noqa: BLE001 - a script failing on a file stops the edit
                        raise ArchiveEditError(MSG_SCRIPT_FAILED.format(detail=_first_line(exc))) from None
                    if not getattr(result, "rejected", False):
                        tmp = out.with_name(f".{name}.tmp")
                        ds.save_as(tmp)
                        os.replace(tmp, out)
                if progress is not None:
                    progress()
        partial.mkdir(parents=True, exist_ok=True)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.rename(partial, dst)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise


def _variables(session: ImageSession, project_id: str, subject: str, label: str) -> dict[str, str]:
    return {"project": project_id, "subject": subject, "session": label,
            "modalityLabel": {"PT": "PET"}.get(session.modality, session.modality)}


def archived_session_update_check(*, session: ImageSession, label: str | None = None,
                                  subject_label: str | None = None,
                                  project_id: str | None = None) -> tuple[Project, str, str] | None:
    """What an update would make of ``session``: (project, label, subject label), or None when nothing
    changes. Raises ValidationError for an edit that cannot be done."""
    new_project = Project.objects.filter(pk=project_id).first() if project_id else session.project
    if new_project is None:
        raise ValidationError(f"No project {project_id}.", code="invalid")
    new_label = label or session.label
    new_subject = subject_label or session.subject.label
    for value in (new_label, new_subject):
        ID_VALIDATOR(value)
    if (new_project.pk, new_label, new_subject) == (session.project_id, session.label, session.subject.label):
        return None
    if ImageSession.objects.filter(project=new_project, label=new_label).exclude(pk=session.pk).exists():
        raise ValidationError(f"Project {new_project.pk} already has a session labelled {new_label}.",
                              code="exists")
    return new_project, new_label, new_subject


def archived_session_update(*, session: ImageSession, actor: str, label: str | None = None,
                            subject_label: str | None = None, project_id: str | None = None,
                            progress=None) -> ImageSession:
    """Relabel, move to another project and/or assign to another subject (created if new). Run by the
    worker job (jobs.py) under the session's lock; files first, then the database."""
    change = archived_session_update_check(session=session, label=label, subject_label=subject_label,
                                           project_id=project_id)
    if change is None:
        return session
    new_project, new_label, new_subject = change
    old_folder = session_folder(session)
    new_rel = f"{new_project.pk}/{ARC}/{new_label}"
    new_folder = archive_root() / new_rel
    rerun = site_config_get().rerun_project_anon_on_rename
    script = _script_for(new_project) if rerun else None
    backup = None
    if new_folder != old_folder or script is not None:
        target = new_folder if new_folder != old_folder else new_folder.with_name(f".{new_label}.new")
        if target.exists():
            raise ArchiveEditError("The destination folder already exists in the archive.")
        _rewrite(src=old_folder, dst=target, script=script,
                 variables=_variables(session, new_project.pk, new_subject, new_label), progress=progress)
        if target != new_folder:  # rewritten in place: swap
            backup = old_folder.with_name(f".{new_label}.old")
            os.rename(old_folder, backup)
            os.rename(target, new_folder)
    old = (session.project_id, session.subject.label, session.label)
    try:
        with transaction.atomic():
            subject, _ = Subject.objects.get_or_create(project=new_project, label=new_subject)
            ImageSession.objects.filter(pk=session.pk).update(project=new_project, subject=subject,
                                                              label=new_label, archive_path=new_rel)
            audit_record(actor=actor, action="session_update", project_id=new_project.pk,
                         subject_label=new_subject, session_label=new_label, old_project=old[0],
                         old_subject=old[1], old_label=old[2], reanonymized=script is not None)
    except BaseException:
        # The database said no: put the old files back where the record points.
        if backup is not None:
            shutil.rmtree(new_folder, ignore_errors=True)
            os.rename(backup, old_folder)
        elif new_folder != old_folder:
            shutil.rmtree(new_folder, ignore_errors=True)
        raise
    for leftover in (backup, old_folder if new_folder != old_folder else None):
        if leftover is not None and leftover.exists():
            shutil.rmtree(leftover, ignore_errors=True)
    session.refresh_from_db()
    return session


def subject_relabel_check(*, subject: Subject, new_label: str) -> None:
    ID_VALIDATOR(new_label)
    if Subject.objects.filter(project=subject.project, label=new_label).exclude(pk=subject.pk).exists():
        raise ValidationError(f"Project {subject.project_id} already has a subject labelled {new_label}.",
                              code="exists")


def subject_relabel(*, subject: Subject, new_label: str, actor: str, progress=None) -> Subject:
    """Change a subject's label. With rerunProjectAnonOnRename, every session's files are first rewritten
    with the new subject label beside the old ones; then all are switched; the database changes last."""
    subject_relabel_check(subject=subject, new_label=new_label)
    old_label = subject.label
    sessions = list(subject.sessions.all())
    script = _script_for(subject.project) if site_config_get().rerun_project_anon_on_rename else None
    fresh: list[tuple[Path, Path]] = []
    if script is not None:
        try:
            for session in sessions:
                folder = session_folder(session)
                new = folder.with_name(f".{session.label}.new")
                shutil.rmtree(new, ignore_errors=True)
                _rewrite(src=folder, dst=new, script=script,
                         variables=_variables(session, subject.project_id, new_label, session.label),
                         progress=progress)
                fresh.append((folder, new))
        except BaseException:
            for _folder, new in fresh:
                shutil.rmtree(new, ignore_errors=True)
            raise
    swapped: list[tuple[Path, Path]] = []
    try:
        for folder, new in fresh:
            backup = folder.with_name(f".{folder.name}.old")
            shutil.rmtree(backup, ignore_errors=True)
            os.rename(folder, backup)
            os.rename(new, folder)
            swapped.append((folder, backup))
        with transaction.atomic():
            Subject.objects.filter(pk=subject.pk).update(label=new_label)
            audit_record(actor=actor, action="subject_relabel", project_id=subject.project_id,
                         subject_label=new_label, old_subject=old_label, sessions=len(sessions),
                         reanonymized=script is not None)
    except BaseException:
        for folder, backup in swapped:  # back to the old files: the database still names the old label
            shutil.rmtree(folder, ignore_errors=True)
            os.rename(backup, folder)
        for _folder, new in fresh:
            shutil.rmtree(new, ignore_errors=True)
        raise
    for _folder, backup in swapped:
        shutil.rmtree(backup, ignore_errors=True)
    subject.refresh_from_db()
    return subject


def archived_session_delete(*, session: ImageSession, actor: str) -> None:
    folder = session_folder(session)
    with transaction.atomic():
        audit_record(actor=actor, action="session_delete", project_id=session.project_id,
                     subject_label=session.subject.label, session_label=session.label,
                     accession_id=session.accession_id, scans=session.scans.count())
        session.delete()
    shutil.rmtree(folder, ignore_errors=True)


def archived_session_quarantine_set(*, session: ImageSession, quarantined: bool, actor: str) -> None:
    ImageSession.objects.filter(pk=session.pk).update(quarantined=quarantined)
    audit_record(actor=actor, action="session_quarantine" if quarantined else "session_release",
                 project_id=session.project_id, subject_label=session.subject.label, session_label=session.label)


# ------------------------------------------------------------------ projects and subjects (data REST writes)


def project_update(*, project: Project, actor: str, name: str | None = None,
                   description: str | None = None) -> Project:
    """PUT on an existing project (XNAT: idempotent): change the given fields, nothing else."""
    changes = {}
    if name is not None and name != project.name:
        changes["name"] = name
    if description is not None and description != project.description:
        changes["description"] = description
    if changes:
        for field, value in changes.items():
            setattr(project, field, value)
        project.full_clean(validate_unique=False)
        with transaction.atomic():
            Project.objects.filter(pk=project.pk).update(**changes)
            audit_record(actor=actor, action="project_update", project_id=project.id, fields=sorted(changes))
    return project


def project_delete(*, project: Project, actor: str) -> None:
    """Delete an empty project. One that still holds subjects, archived or prearchived sessions is refused:
    nothing is deleted."""
    from prearchive.models import PrearchiveSession

    with transaction.atomic():
        locked = Project.objects.select_for_update().filter(pk=project.pk).first()
        if locked is None:
            return
        held = (ImageSession.objects.filter(project=locked).count(), Subject.objects.filter(project=locked).count(),
                PrearchiveSession.objects.filter(project_id=locked.pk).count())
        if any(held):
            raise ValidationError(
                f"Project {project.id} still holds {held[1]} subject(s), {held[0]} archived and {held[2]} "
                "prearchived session(s); delete those first. Nothing was deleted.", code="not_empty")
        try:
            with transaction.atomic():
                locked.delete()
        except ProtectedError:
            raise ValidationError(f"Project {project.id} is still referenced (uploads, transfers); nothing was "
                                  "deleted.", code="not_empty") from None
        audit_record(actor=actor, action="project_delete", project_id=project.id)


def subject_create(*, project: Project, label: str, actor: str) -> tuple[Subject, bool]:
    """PUT /data/projects/P/subjects/S: the subject (created when new). Returns (subject, created)."""
    ID_VALIDATOR(label)
    with transaction.atomic():
        subject, created = Subject.objects.get_or_create(project=project, label=label)
        if created:
            audit_record(actor=actor, action="subject_create", project_id=project.id, subject_label=label)
    return subject, created


def subject_delete(*, subject: Subject, actor: str) -> None:
    """Delete a subject without experiments; one that still has archived sessions is refused."""
    with transaction.atomic():
        locked = Subject.objects.select_for_update().filter(pk=subject.pk).first()
        if locked is None:
            return
        count = ImageSession.objects.filter(subject=locked).count()
        if count:
            raise ValidationError(f"Subject {subject.label} still has {count} experiment(s); delete them first. "
                                  "Nothing was deleted.", code="not_empty")
        audit_record(actor=actor, action="subject_delete", project_id=subject.project_id,
                     subject_label=subject.label)
        locked.delete()
