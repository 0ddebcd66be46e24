"""XNAT REST for the project settings of the archive path (archived data itself: api_rest.py).

- ``GET/PUT /data/projects/{id}/prearchive_code[/{code}]`` and ``quarantine_code[/{code}]``.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse

from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api
from xnatlite.models import ImageSession, Project
from .services import project_prearchive_code_set, project_quarantine_code_set


def session_zip_response(session: ImageSession) -> FileResponse:
    """The whole session as a zip (the archive page's download): the data REST's experiment zip."""
    from . import data
    from .api_rest import files_zip_response

    return files_zip_response(session, data.scan_files(session, list(session.scans.all())), session.label)


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
