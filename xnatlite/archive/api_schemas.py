"""XNAT's schema endpoints: ``/xapi/schemas`` (the names), ``/xapi/schemas/{name}`` and
``/schemas/xnat/xnat.xsd`` (the schema). The one schema, ``xnat``, is schemas/xnat.xsd: xnatlite's own
description of the types it holds, from which xnatpy builds its object model."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from django.http import HttpRequest, HttpResponse, JsonResponse

from xnatlite import rest
from xnatlite.auth import xnat_api

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMAS = ("xnat",)


@lru_cache(maxsize=None)
def schema_text(name: str) -> bytes:
    return (SCHEMA_DIR / f"{name}.xsd").read_bytes()


def _xsd(name: str) -> HttpResponse:
    return HttpResponse(schema_text(name), content_type="application/xml; charset=utf-8")


@xnat_api
def schemas(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return rest.text("Method not allowed\n", status=405)
    return JsonResponse(list(SCHEMAS), safe=False)


@xnat_api
def schema(request: HttpRequest, schema: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return rest.text("Method not allowed\n", status=405)
    name = schema.removesuffix(".xsd")
    if name not in SCHEMAS:
        return rest.not_found(f"No schema named {name}; this server has: {', '.join(SCHEMAS)}.")
    return _xsd(name)


@xnat_api(anonymous=True)
def xnat_xsd(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return rest.text("Method not allowed\n", status=405)
    return _xsd("xnat")


# XNAT's data-type listing (/data/search/elements): the types of the schema that hold data here. xnatlite has
# no search engine, so no type lists display fields (/data/search/elements/{type} answers an empty listing).
ELEMENTS = (("xnat:projectData", "Project", "Projects"), ("xnat:subjectData", "Subject", "Subjects"),
            ("xnat:mrSessionData", "MR Session", "MR Sessions"), ("xnat:petSessionData", "PET Session", "PET Sessions"),
            ("xnat:petmrSessionData", "PET-MR Session", "PET-MR Sessions"),
            ("xnat:ctSessionData", "CT Session", "CT Sessions"),
            ("xnat:otherDicomSessionData", "Session", "Sessions"))


@xnat_api
def search_elements(request: HttpRequest) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return rest.text("Method not allowed\n", status=405)
    return rest.result_set({"ELEMENT_NAME": name, "SINGULAR": singular, "PLURAL": plural, "SECURED": "true"}
                           for name, singular, plural in ELEMENTS)


@xnat_api
def search_element_fields(request: HttpRequest, element: str) -> HttpResponse:
    if request.method not in ("GET", "HEAD"):
        return rest.text("Method not allowed\n", status=405)
    if element not in {e[0] for e in ELEMENTS}:
        return rest.not_found(f"Unknown data type {element}.")
    return rest.result_set([])
