"""XNAT's data REST of the archive: projects, subjects, experiments, scans, resources and files.

Paths (each also under /data/archive/...): /data/projects[/P], /data/projects/P/subjects[/S],
/data/subjects[/S], .../subjects/S/experiments, /data/projects/P/experiments, /data/experiments[/E]; below an
experiment (by accession ID, or by label under a project): /scans[/N], /scans/N/resources[/R],
/scans/N/resources/R/files[/name], /scans/{N|N,M|ALL}/files, /resources, /files. ``format`` as formats.py;
``format=zip`` on a files listing (or on an experiment) answers the files as a zip.

Who: outsiders of a project get 404 for everything in it (its existence is not revealed), collaborators and
members read, members create subjects, owners change and delete, site admins everything; quarantined sessions
only for owners and site admins. Views translate and call data.py (reads) or services.py (writes).
"""
from __future__ import annotations

import fnmatch
import tempfile
import zipfile

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse

from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api
from xnatlite.models import ImageSession, Project
from xnatlite.services import project_create

from . import data
from .formats import list_response, object_response, requested_format
from .services import project_delete, project_update, subject_create, subject_delete

METHOD_NOT_ALLOWED = "Method not allowed\n"


def _405() -> HttpResponse:
    return rest.text(METHOD_NOT_ALLOWED, status=405)


def _bad_xsi_type(request: HttpRequest, allowed: set[str] | None = None) -> HttpResponse | None:
    value = request.GET.get("xsiType") or request.GET.get("xsitype")
    if not value:
        return None
    wanted = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in wanted if v not in (allowed or data.KNOWN_TYPES)]
    if unknown:
        return rest.bad_request(f"Unknown xsiType '{unknown[0]}'.")
    return None


def _filtered(request: HttpRequest, rows: list[dict]) -> list[dict]:
    """XNAT's listing filters: ``?label=A*`` etc. on any column of the rows (case-insensitive names; a
    comma separates alternatives)."""
    skip = {"format", "columns", "xsitype", "sortby", "sortorder", "offset", "limit", "accept-not-found"}
    for name, value in request.GET.items():
        if name.lower() in skip or not rows:
            continue
        column = next((c for c in rows[0] if c.lower() == name.lower()), None)
        if column is None:
            continue
        patterns = [p for p in value.split(",") if p]
        rows = [r for r in rows if any(fnmatch.fnmatchcase(str(r.get(column, "")), p) for p in patterns)]
    value = request.GET.get("xsiType") or request.GET.get("xsitype")
    if value and rows and "xsiType" in rows[0]:
        types = {v.strip() for v in value.split(",")}
        rows = [r for r in rows if r["xsiType"] in types or _is_kind(r["xsiType"], types)]
    return rows


def _is_kind(xsi_type: str, wanted: set[str]) -> bool:
    generic = {"xnat:experimentData", "xnat:subjectAssessorData", "xnat:imageSessionData"}
    if wanted & generic and xsi_type in data.SESSION_TYPES:
        return True
    return "xnat:imageScanData" in wanted and xsi_type.endswith("ScanData")


def _listing(request: HttpRequest, rows: list[dict], title: str) -> HttpResponse:
    bad = _bad_xsi_type(request)
    if bad is not None:
        return bad
    return list_response(request, _filtered(request, rows), title=title)


def _no_project(project_id: str) -> HttpResponse:
    return rest.not_found(f"Unable to find project {project_id}.")


def _fields(request: HttpRequest, *names: str) -> dict[str, str]:
    """Values sent as ?name= or as XNAT's xpath form (xnat:projectData/name=...)."""
    found = {}
    for name in names:
        for key, value in request.GET.items():
            if key == name or key.lower().endswith("/" + name.lower()):
                found[name] = value
    return found


def _validation_message(exc: ValidationError) -> str:
    if hasattr(exc, "message_dict"):
        return "; ".join(m for msgs in exc.message_dict.values() for m in msgs)
    return " ".join(exc.messages)


def _owner_delete(request: HttpRequest, project_id: str, what: str, delete) -> HttpResponse:
    """A DELETE only the project's owners (and site admins) may make; refused deletes answer 409."""
    if not permissions.can_manage_project(request.user, project_id):
        return forbidden(f"Only the owners of project {project_id} may delete {what}.")
    try:
        delete(request.user.get_username())
    except ValidationError as exc:
        return rest.text(_validation_message(exc) + "\n", status=409)
    return rest.text("")


# ------------------------------------------------------------------ projects


@xnat_api
def projects(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    rows = [data.project_row(p) for p in permissions.projects_for(request.user).order_by("id")]
    return _listing(request, rows, "Projects")


@xnat_api
def project(request: HttpRequest, project_id: str) -> HttpResponse:
    found = Project.objects.filter(pk=project_id).first()
    readable = found is not None and permissions.can_read_project(request.user, project_id)
    if request.method in ("GET", "HEAD"):
        if not readable:
            return _no_project(project_id)
        return object_response(request, data.project_item(found))
    if request.method in ("PUT", "POST"):
        bad = _bad_xsi_type(request, {"xnat:projectData"})
        if bad is not None:
            return bad
        fields = _fields(request, "name", "description")
        if found is None:
            try:
                project_create(project_id=project_id, name=fields.get("name", ""),
                               description=fields.get("description", ""), owner=request.user,
                               actor=request.user.get_username())
            except PermissionDenied as exc:  # uiAllowNonAdminProjectCreation is off
                return forbidden(str(exc))
            except ValidationError as exc:
                if getattr(exc, "code", "") == "exists":  # created meanwhile: PUT is idempotent
                    return rest.text(project_id)
                return rest.bad_request(_validation_message(exc))
            return rest.text(project_id, status=201)
        if not permissions.can_manage_project(request.user, project_id):
            if not fields:  # XNAT: a PUT that changes nothing on a visible project is a no-op
                return rest.text(project_id) if readable else forbidden(f"You may not edit project {project_id}.")
            return forbidden(f"Only the owners of project {project_id} may change it.")
        try:
            project_update(project=found, actor=request.user.get_username(), **fields)
        except ValidationError as exc:
            return rest.bad_request(_validation_message(exc))
        return rest.text(project_id)
    if request.method == "DELETE":
        if not readable:
            return _no_project(project_id)
        return _owner_delete(request, project_id, "it", lambda actor: project_delete(project=found, actor=actor))
    return _405()


@xnat_api
def project_experiments(request: HttpRequest, project_id: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    found = data.project_visible(request.user, project_id)
    if found is None:
        return _no_project(project_id)
    sessions = data.sessions_visible(request.user).filter(project=found).order_by("label")
    return _listing(request, [data.experiment_row(e) for e in sessions], "Experiments")


@xnat_api
def empty_listing(request: HttpRequest, project_id: str | None = None, subject: str | None = None,
                  **_kwargs) -> HttpResponse:
    """Resources and files of projects and subjects (xnatlite keeps none there) and of experiments."""
    if request.method not in ("GET", "HEAD"):
        return _405()
    found = None
    if project_id is not None:
        found = data.project_visible(request.user, project_id)
        if found is None:
            return _no_project(project_id)
    if subject is not None and data.subject_find(request.user, subject, found) is None:
        return rest.not_found(f"Unable to find subject {subject}.")
    experiment = _kwargs.get("experiment")
    if experiment is not None and data.experiment_find(request.user, experiment, found) is None:
        return rest.not_found(f"Unable to find experiment {experiment}.")
    return _listing(request, [], "Resources")


# ------------------------------------------------------------------ subjects


@xnat_api
def project_subjects(request: HttpRequest, project_id: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    found = data.project_visible(request.user, project_id)
    if found is None:
        return _no_project(project_id)
    rows = [data.subject_row(s) for s in found.subjects.order_by("label")]
    return _listing(request, rows, "Subjects")


@xnat_api
def subjects(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    rows = [data.subject_row(s) for s in data.subjects_visible(request.user).order_by("project_id", "label")]
    return _listing(request, rows, "Subjects")


def _subject_get(request: HttpRequest, subject) -> HttpResponse:
    sessions = list(data.sessions_visible(request.user).filter(subject=subject).order_by("label"))
    return object_response(request, data.subject_item(subject, sessions))


@xnat_api
def subject(request: HttpRequest, project_id: str, subject: str) -> HttpResponse:
    found = data.project_visible(request.user, project_id)
    if found is None:
        return _no_project(project_id)
    existing = data.subject_find(request.user, subject, found)
    if request.method in ("GET", "HEAD"):
        if existing is None:
            return rest.not_found(f"Unable to find subject {subject} in project {project_id}.")
        return _subject_get(request, existing)
    if request.method in ("PUT", "POST"):
        bad = _bad_xsi_type(request, {"xnat:subjectData"})
        if bad is not None:
            return bad
        if not permissions.can_upload(request.user, project_id):
            return forbidden(f"You may not create or change subjects in project {project_id}.")
        if existing is not None:
            return rest.text(data.subject_id(existing))
        label = _fields(request, "label").get("label") or subject
        try:
            created, _ = subject_create(project=found, label=label, actor=request.user.get_username())
        except ValidationError as exc:
            return rest.bad_request(f"Invalid subject label '{label}': {_validation_message(exc)}")
        return rest.text(data.subject_id(created), status=201)
    if request.method == "DELETE":
        if existing is None:
            return rest.not_found(f"Unable to find subject {subject} in project {project_id}.")
        return _owner_delete(request, project_id, "subjects",
                             lambda actor: subject_delete(subject=existing, actor=actor))
    return _405()


@xnat_api
def subject_by_id(request: HttpRequest, subject: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    found = data.subject_find(request.user, subject)
    if found is None:
        return rest.not_found(f"Unable to find subject {subject}.")
    return _subject_get(request, found)


@xnat_api
def subject_experiments(request: HttpRequest, subject: str, project_id: str | None = None) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    found = None
    if project_id is not None:
        found = data.project_visible(request.user, project_id)
        if found is None:
            return _no_project(project_id)
    owner = data.subject_find(request.user, subject, found)
    if owner is None:
        return rest.not_found(f"Unable to find subject {subject}.")
    sessions = data.sessions_visible(request.user).filter(subject=owner).order_by("label")
    return _listing(request, [data.experiment_row(e) for e in sessions], "Experiments")


# ------------------------------------------------------------------ experiments and below


@xnat_api
def experiments(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return _405()
    sessions = data.sessions_visible(request.user).order_by("project_id", "label")
    return _listing(request, [data.experiment_row(e) for e in sessions], "Experiments")


def _experiment(request: HttpRequest, kwargs: dict) -> ImageSession | HttpResponse:
    project_id, subject, name = kwargs.get("project_id"), kwargs.get("subject"), kwargs["experiment"]
    found = owner = None
    if project_id is not None:
        found = data.project_visible(request.user, project_id)
        if found is None:
            return _no_project(project_id)
    if subject is not None:
        owner = data.subject_find(request.user, subject, found)
        if owner is None:
            return rest.not_found(f"Unable to find subject {subject}.")
    session = data.experiment_find(request.user, name, found, owner)
    if session is None:
        return rest.not_found(f"Unable to find experiment {name}.")
    data.session_catalogs_ensure(session=session)
    return session


def _scans(session: ImageSession, spec: str):
    scans = list(session.scans.all())
    if spec.upper() == "ALL":
        return scans
    wanted = [s for s in spec.split(",") if s]
    chosen = [s for s in scans if s.scan_id in wanted]
    if len(chosen) != len(set(wanted)):
        return None
    return chosen


def _scan(session: ImageSession, scan_id: str):
    return session.scans.filter(scan_id=scan_id).first()


def _resource_ok(scan, resource: str) -> bool:
    return resource in (data.RESOURCE_LABEL, str(scan.pk))


def files_zip_response(session: ImageSession, files: list[data.ScanFile], name: str) -> FileResponse:
    """Files as a zip ``{label}/SCANS/{scan}/DICOM/{file}``, spooled to a temporary file (never in memory)."""
    spool = tempfile.TemporaryFile()
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for f in files:
            zf.write(f.path, arcname=f"{session.label}/SCANS/{f.scan.scan_id}/DICOM/{f.name}")
    spool.seek(0)
    return FileResponse(spool, as_attachment=True, filename=f"{name}.zip", content_type="application/zip")


def _files_answer(request: HttpRequest, session: ImageSession, scans: list, name: str) -> HttpResponse:
    files = data.scan_files(session, scans)
    if requested_format(request) == "zip":
        return files_zip_response(session, files, name)
    rows = []
    for f in files:
        try:
            size = f.path.stat().st_size
        except FileNotFoundError:
            continue
        rows.append(data.file_row(session, f, size))
    return _listing(request, rows, "Files")


def _read_only(func):
    def view(request: HttpRequest, **kwargs) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return _405()
        session = _experiment(request, kwargs)
        if isinstance(session, HttpResponse):
            return session
        return func(request, session, **{k: v for k, v in kwargs.items()
                                         if k not in ("project_id", "subject", "experiment")})

    view.__name__ = func.__name__
    view.__doc__ = func.__doc__
    return xnat_api(view)


@_read_only
def experiment(request: HttpRequest, session: ImageSession) -> HttpResponse:
    if requested_format(request) == "zip":
        return files_zip_response(session, data.scan_files(session, list(session.scans.all())), session.label)
    from prearchive.services.residual import session_findings

    item = data.experiment_item(session)
    item["residual_phi"] = [f["message"] for f in session_findings(image_session_id=session.pk)]  # issue 14
    return object_response(request, item)


@_read_only
def experiment_files(request: HttpRequest, session: ImageSession) -> HttpResponse:
    return _files_answer(request, session, list(session.scans.all()), session.label)


@_read_only
def scans(request: HttpRequest, session: ImageSession) -> HttpResponse:
    return _listing(request, [data.scan_row(session, s) for s in session.scans.all()], "Scans")


@_read_only
def scan(request: HttpRequest, session: ImageSession, scan: str) -> HttpResponse:
    found = _scan(session, scan)
    if found is None:
        return rest.not_found(f"Unable to find scan {scan}.")
    if requested_format(request) == "zip":
        return _files_answer(request, session, [found], f"{session.label}_{found.scan_id}")
    return object_response(request, data.scan_item(session, found))


@_read_only
def scan_files(request: HttpRequest, session: ImageSession, scans: str) -> HttpResponse:
    chosen = _scans(session, scans)
    if chosen is None:
        return rest.not_found(f"Unable to find scan {scans}.")
    return _files_answer(request, session, chosen, f"{session.label}_{scans.replace(',', '_')}")


@_read_only
def scan_resources(request: HttpRequest, session: ImageSession, scan: str) -> HttpResponse:
    found = _scan(session, scan)
    if found is None:
        return rest.not_found(f"Unable to find scan {scan}.")
    return _listing(request, [data.resource_row(session, found)], "Resources")


@_read_only
def scan_resource(request: HttpRequest, session: ImageSession, scan: str, resource: str) -> HttpResponse:
    found = _scan(session, scan)
    if found is None:
        return rest.not_found(f"Unable to find scan {scan}.")
    if not _resource_ok(found, resource):
        return rest.not_found(f"Unable to find resource {resource}.")
    fmt = requested_format(request)
    if fmt == "zip":
        return _files_answer(request, session, [found], f"{session.label}_{found.scan_id}_{data.RESOURCE_LABEL}")
    if fmt == "xml":
        path = data.catalog_path(session, found)
        if path.exists():
            return FileResponse(open(path, "rb"), content_type="text/xml")
    return object_response(request, data.resource_item(session, found))


@_read_only
def resource_files(request: HttpRequest, session: ImageSession, scan: str, resource: str) -> HttpResponse:
    found = _scan(session, scan)
    if found is None:
        return rest.not_found(f"Unable to find scan {scan}.")
    if not _resource_ok(found, resource):
        return rest.not_found(f"Unable to find resource {resource}.")
    return _files_answer(request, session, [found], f"{session.label}_{found.scan_id}_{data.RESOURCE_LABEL}")


@_read_only
def resource_file(request: HttpRequest, session: ImageSession, scan: str, resource: str,
                  file_name: str) -> HttpResponse:
    name = file_name
    found = _scan(session, scan)
    if found is None:
        return rest.not_found(f"Unable to find scan {scan}.")
    if not _resource_ok(found, resource):
        return rest.not_found(f"Unable to find resource {resource}.")
    if "/" in name or not data.is_data_file(name):
        return rest.not_found(f"Unable to find file {name}.")
    path = data.scan_folder(session, found) / name
    try:
        handle = open(path, "rb")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return rest.not_found(f"Unable to find file {name}.")
    return FileResponse(handle, content_type="application/dicom", as_attachment=False, filename=name)
