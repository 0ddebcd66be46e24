"""XNAT REST for the anonymization scripts (reference/xnat.md §2):

- project: ``/data/projects/{id}/config/anon/projects/{id}`` (GET table, ``?contents=true`` raw text; PUT body
  with ``?inbody=true`` and/or ``?status=enabled|disabled|true|false``), ``/xapi/anonymize/projects/{id}`` (text)
  and ``.../enabled`` (JSON boolean);
- site: ``/data/config/anon/script``, ``/xapi/anonymize/site``, ``/xapi/anonymize/site/enabled``;
- ``GET /xapi/anonymize/default``: XNAT's default script.
A script that does not compile is refused with 400 ``LINE:COL: message``; nothing changes.
"""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse

from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api
from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT
from xnatlite.models import Project
from xnatlite.selectors import site_config_get
from xnatlite.services import site_config_update
from .services import project_anon_script_set

STATUS_VALUES = {"enabled": True, "true": True, "disabled": False, "false": False}
MSG_NOTHING = ("You must specify either the status querystring parameter or a configuration object in the "
               "request body.")


def _body(request: HttpRequest) -> str:
    return request.body.decode("utf-8", errors="replace")


def _config_row(*, path: str, project: str, contents: str, enabled: bool, tool: str = "anon") -> dict:
    return {"tool": tool, "path": path, "project": project, "user": "", "create_date": "", "reason": "",
            "contents": contents, "unversioned": "false", "version": "1",
            "status": "enabled" if enabled else "disabled"}


def config_get(request: HttpRequest, *, path: str, project: str, contents: str, enabled: bool,
               tool: str = "anon") -> HttpResponse:
    """XNAT's config service GET: ``?contents=true`` the raw contents (404, or 204 with
    ``accept-not-found=true``, when unset or disabled), else the config table."""
    if request.GET.get("contents", "").lower() == "true":
        if not enabled or not contents:
            if request.GET.get("accept-not-found", "").lower() == "true":
                return HttpResponse(status=204)
            return rest.not_found("No such configuration.")
        return rest.text(contents)
    return rest.result_set([_config_row(path=path, project=project, contents=contents, enabled=enabled, tool=tool)])


def _put_values(request: HttpRequest) -> tuple[str | None, bool | None, HttpResponse | None]:
    status = request.GET.get("status")
    enabled = None
    if status is not None:
        enabled = STATUS_VALUES.get(status.strip().lower())
        if enabled is None:
            return None, None, rest.bad_request("status must be enabled, disabled, true or false.")
    text = _body(request)
    text = text if text.strip() else None
    if text is None and enabled is None:
        return None, None, rest.bad_request(MSG_NOTHING)
    return text, enabled, None


def _validation_response(exc: ValidationError) -> HttpResponse:
    return rest.bad_request(" ".join(exc.messages))


def _project_put(request: HttpRequest, project: Project, text: str | None, enabled: bool | None) -> HttpResponse:
    if not permissions.can_manage_project(request.user, project.pk):
        return forbidden()
    try:
        project_anon_script_set(project=project, actor=request.user.get_username(), text=text, enabled=enabled)
    except ValidationError as exc:
        return _validation_response(exc)
    return rest.text("")


def _project(request: HttpRequest, project_id: str) -> Project | None:
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(request.user, project_id):
        return None
    return project


@xnat_api
def project_config(request: HttpRequest, project_id: str, path_project: str) -> HttpResponse:
    project = _project(request, project_id)
    if project is None or path_project != project_id:
        return rest.not_found(f"No project with the ID {project_id}.")
    if request.method == "GET":
        return config_get(request, path=f"/projects/{project_id}", project=project_id,
                           contents=project.anon_script, enabled=project.anon_script_enabled)
    if request.method not in ("PUT", "POST"):
        return rest.text("Method not allowed\n", status=405)
    text, enabled, error = _put_values(request)
    return error or _project_put(request, project, text, enabled)


@xnat_api
def xapi_project(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project(request, project_id)
    if project is None:
        return rest.not_found(f"No project with the ID {project_id}.")
    if request.method == "GET":
        return rest.text(project.anon_script)
    if request.method != "PUT":
        return rest.text("Method not allowed\n", status=405)
    return _project_put(request, project, _body(request), None)


def _bool_body(request: HttpRequest) -> bool | None:
    raw = _body(request).strip().strip('"').lower() or request.GET.get("enabled", "").lower()
    return {"true": True, "false": False}.get(raw)


@xnat_api
def xapi_project_enabled(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project(request, project_id)
    if project is None:
        return rest.not_found(f"No project with the ID {project_id}.")
    if request.method == "GET":
        return JsonResponse(project.anon_script_enabled, safe=False)
    if request.method != "PUT":
        return rest.text("Method not allowed\n", status=405)
    enabled = _bool_body(request)
    if enabled is None:
        return rest.bad_request("The body must be true or false.")
    return _project_put(request, project, None, enabled)


def _site_put(request: HttpRequest, text: str | None, enabled: bool | None) -> HttpResponse:
    if not permissions.is_site_admin(request.user):
        return forbidden("Only site administrators may change the site-wide script.")
    data: dict = {}
    if text is not None:
        from anonymization.services import script_validate

        try:
            script_validate(text=text)
        except ValidationError as exc:
            return _validation_response(exc)
        data["sitewideAnonymizationScript"] = text
    if enabled is not None:
        data["enableSitewideAnonymizationScript"] = enabled
    try:
        site_config_update(data=data, actor=request.user.get_username())
    except ValidationError as exc:
        return rest.bad_request(" ".join(m for msgs in exc.message_dict.values() for m in msgs))
    return rest.text("")


@xnat_api
def site_config(request: HttpRequest) -> HttpResponse:
    config = site_config_get()
    if request.method == "GET":
        return config_get(request, path="script", project="", contents=config.sitewide_anonymization_script,
                           enabled=config.enable_sitewide_anonymization_script)
    if request.method not in ("PUT", "POST"):
        return rest.text("Method not allowed\n", status=405)
    text, enabled, error = _put_values(request)
    return error or _site_put(request, text, enabled)


@xnat_api
def xapi_site(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return rest.text(site_config_get().sitewide_anonymization_script)
    if request.method != "PUT":
        return rest.text("Method not allowed\n", status=405)
    return _site_put(request, _body(request), None)


@xnat_api
def xapi_site_enabled(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return HttpResponse(json.dumps(site_config_get().enable_sitewide_anonymization_script),
                            content_type="application/json")
    if request.method != "PUT":
        return rest.text("Method not allowed\n", status=405)
    enabled = _bool_body(request)
    if enabled is None:
        return rest.bad_request("The body must be true or false.")
    return _site_put(request, None, enabled)


@xnat_api
def xapi_default(request: HttpRequest) -> HttpResponse:
    return rest.text(DEFAULT_SITE_ANON_SCRIPT)
