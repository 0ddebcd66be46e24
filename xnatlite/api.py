"""XNAT-compatible REST: authentication and /xapi/siteConfig (/data/projects: archive/api_rest.py)."""
from __future__ import annotations

import json
import time
from typing import Any

from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.forms.models import model_to_dict
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_http_methods

from . import permissions, rest
from .auth import MSG_THROTTLED, TOKEN_SESSION_KEY, forbidden, unauthorized, xnat_api
from .selectors import site_config_get
from .services import MSG_UNKNOWN_PROPERTY, site_config_update
from .site_settings import PROPERTIES, canonical_property

# ---------------------------------------------------------------- authentication


@xnat_api(anonymous=True)
@require_http_methods(["GET", "POST", "PUT", "DELETE"])
def jsession(request: HttpRequest) -> HttpResponse:
    """GET/POST /data/JSESSION: answer a session token (HTTP Basic or an existing session); DELETE ends it."""
    if request.method == "DELETE":
        logout(request)
        return rest.text("")
    if not request.user.is_authenticated:
        return unauthorized()
    if request.auth_method == "basic":
        login(request, request.user)
        request.session[TOKEN_SESSION_KEY] = True
        request.session.save()
    return rest.text(request.session.session_key or "")


@xnat_api(anonymous=True)
@require_http_methods(["PUT", "POST"])
def services_auth(request: HttpRequest) -> HttpResponse:
    """PUT /data/services/auth with form fields username and password (xnatpy's login): the token."""
    from django.contrib.auth import authenticate
    from django.http import QueryDict

    fields = QueryDict(request.body) if request.method == "PUT" else request.POST
    user = authenticate(request, username=fields.get("username", ""), password=fields.get("password", ""))
    if user is None or not user.is_active:
        if getattr(request, "login_throttled", False):
            return rest.text(MSG_THROTTLED + "\n", status=429)
        return unauthorized("Invalid username or password")
    login(request, user)
    request.session[TOKEN_SESSION_KEY] = True
    request.session.save()
    return rest.text(request.session.session_key or "")


@xnat_api
@require_http_methods(["GET"])
def auth_check(request: HttpRequest) -> HttpResponse:
    return rest.text(f"User '{request.user.get_username()}' is logged in")


@xnat_api(anonymous=True)
@require_http_methods(["GET"])
def version(request: HttpRequest) -> HttpResponse:
    return rest.text(rest.XNAT_VERSION)


def _build_info() -> dict[str, str]:
    return {"version": rest.XNAT_VERSION, "application": "xnatlite", "buildNumber": "1"}


_STARTED = time.time()


@xnat_api(anonymous=True)
@require_http_methods(["GET"])
def build_info(request: HttpRequest) -> HttpResponse:
    """Public, as in XNAT: what clients read before they log in (xnatpy's version check)."""
    return JsonResponse(_build_info())


@xnat_api(anonymous=True)
@require_http_methods(["GET"])
def build_info_property(request: HttpRequest, name: str) -> HttpResponse:
    info = _build_info()
    if name not in info:
        return rest.not_found(f"No build information property named {name}")
    return HttpResponse(json.dumps(info[name]), content_type="application/json")


@xnat_api(anonymous=True)
@require_http_methods(["GET"])
def uptime(request: HttpRequest) -> HttpResponse:
    seconds = int(time.time() - _STARTED)
    days, rest_s = divmod(seconds, 86400)
    hours, rest_s = divmod(rest_s, 3600)
    minutes, secs = divmod(rest_s, 60)
    return JsonResponse({"days": days, "hours": hours, "minutes": minutes, "seconds": secs})


# ---------------------------------------------------------------- /xapi/siteConfig


def _site_values() -> dict[str, Any]:
    values = model_to_dict(site_config_get())
    return {prop: ("" if values[field] is None else values[field]) for prop, field in PROPERTIES.items()}


MSG_ADMIN_READ = "Only site administrators may read site settings."


def _may_read(request: HttpRequest) -> bool:
    """The site settings (inbox path, scripts, filters, users) are for site admins only; what clients need
    before or without them (build information, version, uptime) is served publicly elsewhere."""
    return permissions.is_site_admin(request.user)


def _update(request: HttpRequest, data: dict[str, Any]) -> HttpResponse:
    if not permissions.is_site_admin(request.user):
        return forbidden("Only site administrators may change site settings.")
    try:
        site_config_update(data=data, actor=request.user.get_username())
    except ValidationError as exc:
        lines = [f"{name}: {msg}" for name, msgs in exc.message_dict.items() for msg in msgs]
        return rest.bad_request("\n".join(lines))
    return rest.text("")


@xnat_api
@require_http_methods(["GET", "POST"])
def site_config(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        if not _may_read(request):
            return forbidden(MSG_ADMIN_READ)
        return JsonResponse(_site_values())
    if request.content_type == "application/json":
        data = rest.json_body(request)
        if data is None:
            return rest.bad_request("The body must be a JSON object of property names and values.")
    else:
        data = {key: request.POST.get(key) for key in request.POST}
    if not data:
        return rest.bad_request("No site configuration properties were given.")
    return _update(request, data)


@xnat_api
@require_http_methods(["GET"])
def site_config_values(request: HttpRequest, names: str) -> HttpResponse:
    if not _may_read(request):
        return forbidden(MSG_ADMIN_READ)
    values = _site_values()
    wanted = [canonical_property(n.strip()) for n in names.split(",")]
    return JsonResponse({name: values[name] for name in wanted if name is not None})


@xnat_api
@require_http_methods(["GET", "POST"])
def site_config_property(request: HttpRequest, name: str) -> HttpResponse:
    if request.method == "GET" and not _may_read(request):
        return forbidden(MSG_ADMIN_READ)
    prop = canonical_property(name)
    if prop is None:
        return rest.not_found(MSG_UNKNOWN_PROPERTY.format(name=name))
    if request.method == "GET":
        return HttpResponse(json.dumps(_site_values()[prop]), content_type="application/json")
    body = request.body.decode("utf-8", errors="replace")
    if request.content_type == "application/json":
        try:
            value: Any = json.loads(body)
        except ValueError:
            value = body
    else:
        value = body
    return _update(request, {prop: value})
