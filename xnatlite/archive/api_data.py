"""XNAT REST for archived sessions and the project settings of the archive path.

- ``GET /data/archive/projects/{p}/subjects/{s}/experiments/{e}`` (also without ``/archive``, as xnatpy asks):
  XNAT's JSON item shape; ``/files?format=zip`` (or ``?format=zip`` on the experiment) the session as a zip;
- ``GET/PUT /data/projects/{id}/prearchive_code[/{code}]`` and ``quarantine_code[/{code}]``.
Quarantined sessions are visible only to those who may see quarantined data (project owners, site admins).
"""
from __future__ import annotations

import os
import tempfile
import zipfile
from pathlib import Path

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse

from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api
from xnatlite.models import ImageSession, Project
from .services import (project_prearchive_code_set, project_quarantine_code_set,
                                       session_folder)

SCAN_TYPES = {"MR": "xnat:mrScanData", "PT": "xnat:petScanData", "CT": "xnat:ctScanData"}


def session_visible(user, session: ImageSession) -> bool:
    if not permissions.can_read_project(user, session.project_id):
        return False
    return not session.quarantined or permissions.can_see_quarantined(user, session.project_id)


def archived_session_get(user, project: str, subject: str, label: str) -> ImageSession | None:
    """The session by project, subject (label or none) and label/accession ID, if the user may see it."""
    qs = ImageSession.objects.select_related("subject", "project").filter(project_id=project)
    session = qs.filter(label=label).first() or qs.filter(accession_id=label).first()
    if session is None or (subject and subject not in (session.subject.label, str(session.subject_id))):
        return None
    return session if session_visible(user, session) else None


def session_item(session: ImageSession) -> dict:
    scans = [{"children": [], "meta": {"isHistory": False, "xsi:type": SCAN_TYPES.get(s.modality,
                                                                                       "xnat:otherDicomScanData")},
              "data_fields": {"ID": s.scan_id, "UID": s.series_instance_uid, "type": s.scan_type,
                              "series_description": s.series_description, "modality": s.modality,
                              "frames": s.frames, "image_session_ID": session.accession_id,
                              "file_count": s.file_count}}
             for s in session.scans.all()]
    return {
        "children": [{"field": "scans/scan", "items": scans}],
        "meta": {"isHistory": False, "xsi:type": session.session_type or "xnat:otherDicomSessionData"},
        "data_fields": {
            "ID": session.accession_id, "id": session.accession_id, "label": session.label,
            "project": session.project_id, "subject_ID": session.subject.label, "UID": session.study_instance_uid,
            "modality": session.modality, "date": session.scan_date.isoformat() if session.scan_date else "",
            "time": session.scan_time.isoformat() if session.scan_time else "",
            "tracer/name": session.pet_tracer, "quarantined": session.quarantined,
            "URI": f"/data/experiments/{session.accession_id}",
        },
    }


def session_zip_response(session: ImageSession) -> FileResponse:
    """The session folder as a zip ``{label}/SCANS/{scan}/DICOM/{file}``, spooled to a temporary file."""
    folder = session_folder(session)
    spool = tempfile.TemporaryFile()
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for root, _dirs, names in os.walk(folder):
            for name in sorted(names):
                if name.startswith("."):
                    continue
                path = Path(root) / name
                zf.write(path, arcname=f"{session.label}/{path.relative_to(folder)}")
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=f"{session.label}.zip", content_type="application/zip")


@xnat_api
def experiment(request: HttpRequest, project: str, subject: str, label: str) -> HttpResponse:
    if request.method != "GET":
        return rest.text("Method not allowed\n", status=405)
    session = archived_session_get(request.user, project, subject, label)
    if session is None:
        return rest.not_found("No such experiment.")
    if request.GET.get("format", "").lower() == "zip":
        return session_zip_response(session)
    return JsonResponse({"items": [session_item(session)]})


@xnat_api
def experiment_files(request: HttpRequest, project: str, subject: str, label: str) -> HttpResponse:
    session = archived_session_get(request.user, project, subject, label)
    if session is None:
        return rest.not_found("No such experiment.")
    if request.GET.get("format", "").lower() == "zip":
        return session_zip_response(session)
    folder = session_folder(session)
    rows = []
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.name.startswith("."):
            rel = path.relative_to(folder)
            rows.append({"Name": path.name, "Size": str(path.stat().st_size), "collection": "DICOM",
                         "cat_ID": rel.parts[1] if len(rel.parts) > 1 else "",
                         "URI": f"{request.path.rstrip('/')}/{rel}"})
    return rest.result_set(rows)


def _code_view(request: HttpRequest, project_id: str, code: str | None, field: str, setter) -> HttpResponse:
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(request.user, project_id):
        return rest.not_found(f"No project with the ID {project_id}.")
    if request.method == "GET" and code is None:
        return rest.text(str(getattr(project, field)))
    if request.method != "PUT" or code is None:
        return rest.text("Method not allowed\n", status=405)
    if not permissions.can_manage_project(request.user, project_id):
        return forbidden()
    try:
        value = setter(project=project, value=code, actor=request.user.get_username())
    except ValidationError as exc:
        status = 403 if getattr(exc, "code", "") == "forbidden" else 400
        return rest.text(" ".join(exc.messages) + "\n", status=status)
    return rest.text(str(value))


@xnat_api
def prearchive_code(request: HttpRequest, project_id: str, code: str | None = None) -> HttpResponse:
    return _code_view(request, project_id, code, "prearchive_code", project_prearchive_code_set)


@xnat_api
def quarantine_code(request: HttpRequest, project_id: str, code: str | None = None) -> HttpResponse:
    return _code_view(request, project_id, code, "quarantine_code", project_quarantine_code_set)
