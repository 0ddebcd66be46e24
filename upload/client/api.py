"""XNAT's config-service paths for the uploader's project settings (tool ``applet``), as the XNAT Desktop
Client reads them (reference/xnat.md §2):

    /data/projects/{id}/config/applet/{name}   and   /data/config/projects/{id}/applet/{name}

``name``: allow-create-subject, require-date, allow-bulk-upload, default-subject-labeling-scheme,
default-session-labeling-scheme. GET ``?contents=true`` answers the raw value (``true``/``false`` or the
scheme); an unset scheme is 404, or 204 with ``accept-not-found=true``. Without ``contents`` the answer is
the config table (ResultSet). PUT takes the value as the body (``?inbody=true`` accepted) and/or
``?status=enabled|disabled`` (disabled: back to the default); neither gives XNAT's 400.
"""
from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api
from xnatlite.models import Project
from xnatlite.services import audit_record

from .labels import SUBJECT_SCHEMES

FIELDS = {
    "allow-create-subject": ("allow_create_subject", "bool", True),
    "require-date": ("require_date", "bool", False),
    "allow-bulk-upload": ("allow_bulk_upload", "bool", True),
    "default-subject-labeling-scheme": ("default_subject_labeling_scheme", "text", ""),
    "default-session-labeling-scheme": ("default_session_labeling_scheme", "text", ""),
}
MSG_NEITHER = ("You must specify either the status querystring parameter or a configuration object in the "
               "request body.")
MSG_BOOL = "The value of {name} must be true or false."
MSG_SUBJECT_SCHEME = "The subject labeling scheme must be one of: {schemes}."
MSG_TOO_LONG = "The value is longer than 255 characters."
MSG_STATUS = "The status must be enabled or disabled."


def applet_value_get(*, project: Project, name: str) -> str:
    field, kind, _default = FIELDS[name]
    value = getattr(project, field)
    return ("true" if value else "false") if kind == "bool" else (value or "")


def applet_value_set(*, project: Project, name: str, value: str | None, status: str | None, actor: str) -> None:
    """Change one applet setting (ValidationError for a bad value)."""
    field, kind, default = FIELDS[name]
    if status is not None and status.lower() not in ("enabled", "true", "disabled", "false"):
        raise ValidationError(MSG_STATUS)
    if status is not None and status.lower() in ("disabled", "false"):
        new = default
    elif value is None:
        return  # status=enabled alone: the value stays
    elif kind == "bool":
        text = value.strip().lower()
        if text not in ("true", "false"):
            raise ValidationError(MSG_BOOL.format(name=name))
        new = text == "true"
    else:
        new = value.strip()
        if len(new) > 255:
            raise ValidationError(MSG_TOO_LONG)
        if name == "default-subject-labeling-scheme" and new and new.lower() not in SUBJECT_SCHEMES:
            raise ValidationError(MSG_SUBJECT_SCHEME.format(schemes=", ".join(SUBJECT_SCHEMES)))
    with transaction.atomic():
        Project.objects.filter(pk=project.pk).update(**{field: new})
        audit_record(actor=actor, action="project_applet_setting", project_id=project.pk, setting=name)


@xnat_api
@require_http_methods(["GET", "PUT", "POST"])
def applet_config(request: HttpRequest, project_id: str, name: str) -> HttpResponse:
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(request.user, project.pk):
        return rest.not_found(f"Unknown project: {project_id}")
    if name not in FIELDS:
        return rest.not_found(f"No configuration applet/{name} for project {project_id}")
    if request.method == "GET":
        value = applet_value_get(project=project, name=name)
        if request.GET.get("contents", "").lower() == "true":
            if value == "":
                if request.GET.get("accept-not-found", "").lower() == "true":
                    return HttpResponse(status=204)
                return rest.not_found(f"No configuration applet/{name} for project {project_id}")
            return rest.text(value)
        rows = [{"tool": "applet", "path": name, "project": project.pk, "user": "", "create_date": "",
                 "reason": "", "contents": value, "unversioned": "false", "version": "1",
                 "status": "enabled" if value != "" else "disabled"}]
        return rest.result_set(rows, title="Configurations")
    if not permissions.can_manage_project(request.user, project.pk):
        return forbidden()
    try:
        body = request.body.decode("utf-8")
    except UnicodeDecodeError:
        return rest.bad_request("The body is not UTF-8 text.")
    status = request.GET.get("status")
    if not body.strip() and status is None:
        return rest.bad_request(MSG_NEITHER)
    try:
        applet_value_set(project=project, name=name, value=body if body.strip() else None, status=status,
                         actor=request.user.get_username())
    except ValidationError as exc:
        return rest.bad_request(exc.messages[0])
    return HttpResponse(status=200)
