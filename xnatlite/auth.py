"""Authentication the XNAT way: HTTP Basic, the Django session, and the JSESSIONID token.

The token of ``POST /data/JSESSION`` is the key of a Django session (the session cookie is named
JSESSIONID), so browser logins and XNAT clients share one mechanism. REST writes need no CSRF token when
they come with HTTP Basic or a token made by /data/JSESSION; a browser's cookie session needs one.
"""
from __future__ import annotations

import base64
import binascii
import functools
from typing import Callable

from django.contrib.auth import authenticate
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.views.decorators.csrf import csrf_exempt

TOKEN_SESSION_KEY = "xnat_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "TRACE")


def _basic_credentials(request: HttpRequest) -> tuple[str, str] | None:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return ("", "")
    username, _, password = raw.partition(":")
    return username, password


class XnatAuthenticationMiddleware:
    """Sets ``request.auth_method`` to "basic", "token", "session" or None."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.auth_method = None
        request.basic_auth_failed = False
        credentials = _basic_credentials(request)
        if credentials is not None:
            user = authenticate(request, username=credentials[0], password=credentials[1])
            if user is not None and user.is_active:
                request.user = user
                request.auth_method = "basic"
            else:
                request.basic_auth_failed = True
        elif request.user.is_authenticated:
            request.auth_method = "token" if request.session.get(TOKEN_SESSION_KEY) else "session"
        return self.get_response(request)


def unauthorized(message: str = "Authentication required") -> HttpResponse:
    response = HttpResponse(message + "\n", status=401, content_type="text/plain")
    response["WWW-Authenticate"] = 'Basic realm="XNAT"'
    return response


def forbidden(message: str = "You do not have permission to do this.") -> HttpResponse:
    return HttpResponse(message + "\n", status=403, content_type="text/plain")


def _csrf_failure(request: HttpRequest) -> HttpResponse | None:
    check = CsrfViewMiddleware(lambda r: HttpResponse())
    check.process_request(request)
    return check.process_view(request, lambda r: HttpResponse(), (), {})


def xnat_api(view=None, *, anonymous: bool = False):
    """Wrap a REST view: 401 for anonymous callers (unless ``anonymous``), CSRF only for browser sessions."""

    def decorate(func):
        @csrf_exempt
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args, **kwargs):
            if getattr(request, "basic_auth_failed", False):
                if getattr(request, "login_throttled", False):
                    return HttpResponse(MSG_THROTTLED + "\n", status=429, content_type="text/plain")
                return unauthorized("Invalid username or password")
            if not anonymous and not request.user.is_authenticated:
                return unauthorized()
            if request.method not in SAFE_METHODS and request.auth_method == "session":
                failure = _csrf_failure(request)
                if failure is not None:
                    return HttpResponse("CSRF verification failed.\n", status=403, content_type="text/plain")
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate


# ---------------------------------------------------------------- login throttling

from django.conf import settings as _settings  # noqa: E402
from django.contrib.auth.backends import ModelBackend  # noqa: E402
from django.core.cache import cache  # noqa: E402

MSG_THROTTLED = "Too many failed logins for this user from this address; try again later."


def _client_address(request) -> str:
    """The peer's address as the server sees it (no forwarded header is trusted)."""
    return (request.META.get("REMOTE_ADDR") or "-") if request is not None else "-"


def _failure_key(username: str, address: str) -> str:
    """One counter per (client address, user name); user names case-insensitive, so case variants share
    it. Hashed: neither name nor address is kept in the cache in the clear."""
    import hashlib

    raw = address.encode("utf-8") + b"\0" + username.casefold().encode("utf-8")
    return "login-fail:" + hashlib.sha256(raw).hexdigest()


def login_throttled(username: str, address: str) -> bool:
    return cache.get(_failure_key(username, address), 0) >= _settings.LOGIN_FAILURE_LIMIT


class ThrottledModelBackend(ModelBackend):
    """Django's model backend, refusing a user name from a client address after too many failed logins
    for it from that address within the window. Failures from one address never lock the user out from
    another, so a stranger cannot keep the admin out. Covers the login page, HTTP Basic and
    /data/services/auth alike."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(self.get_user_model_username_field(), "")
        address = _client_address(request)
        if login_throttled(username or "", address):
            if request is not None:
                request.login_throttled = True
            return None
        user = super().authenticate(request, username=username, password=password, **kwargs)
        key = _failure_key(username or "", address)
        if user is None:
            if cache.add(key, 1, timeout=_settings.LOGIN_FAILURE_WINDOW) is False:
                try:
                    cache.incr(key)
                except ValueError:
                    cache.set(key, 1, timeout=_settings.LOGIN_FAILURE_WINDOW)
        else:
            cache.delete(key)
        return user

    @staticmethod
    def get_user_model_username_field() -> str:
        from django.contrib.auth import get_user_model

        return get_user_model().USERNAME_FIELD


# ---------------------------------------------------------------- redirect targets from the request

def redirect_target(request: HttpRequest, value: str | None, default: str) -> str:
    """``value`` (a ``next=`` parameter) when it is a path on this site, else ``default``: never another
    host, scheme-relative URL (``//host``) or backslash trick (Django's url_has_allowed_host_and_scheme)."""
    from django.utils.http import url_has_allowed_host_and_scheme

    if value and url_has_allowed_host_and_scheme(value, allowed_hosts={request.get_host()},
                                                 require_https=request.is_secure()):
        return value
    return default
