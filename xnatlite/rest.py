"""Small helpers for XNAT-shaped REST responses."""
from __future__ import annotations

import json
from typing import Any, Iterable

from django.http import HttpResponse, JsonResponse

XNAT_VERSION = "1.8.10"


def result_set(rows: Iterable[dict[str, Any]], *, title: str = "") -> JsonResponse:
    rows = list(rows)
    body: dict[str, Any] = {"ResultSet": {"Result": rows, "totalRecords": str(len(rows))}}
    if title:
        body["ResultSet"]["title"] = title
    return JsonResponse(body)


def text(body: str, status: int = 200, content_type: str = "text/plain") -> HttpResponse:
    return HttpResponse(body, status=status, content_type=f"{content_type}; charset=utf-8")


def bad_request(message: str) -> HttpResponse:
    return text(message.rstrip("\n") + "\n", status=400)


def not_found(message: str) -> HttpResponse:
    return text(message.rstrip("\n") + "\n", status=404)


def json_body(request) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        data = json.loads(request.body.decode("utf-8") or "null")
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None
