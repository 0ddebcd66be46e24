"""The config-service paths the XNAT Desktop Client reads for a project (reference/xnat.md §2, §6), read-only
views of the site and project settings xnatlite keeps:

- series import filter: ``/data/config/seriesImportFilter/config`` and ``/data/projects/{id}/config/
  seriesImportFilter/config``; contents the filter as XNAT stores it, JSON ``{"mode", "list"}`` (a modality
  map as one key per modality), enabled = the config status;
- PET tracers: ``/data/config/tracers/tracers`` and ``/data/projects/{id}/config/tracers/tracers`` (whitespace
  separated; the project list is enabled only when the project uses its own);
- PET-MR handling: ``/data/config/separatePETMR/config`` and ``/data/projects/{id}/config/separatePETMR/config``
  (``petmr``/``pet``/``separate``; a project without its own is not found, as XNAT, and clients fall back);
- ``/data/config/applet/allow-create-subject``: xnatlite has no site-wide value (XNAT's fresh state: not
  found; the client then allows creation); per project: upload/client/api.py.
``?contents=true`` answers the raw contents, else XNAT's config table (api_anon.config_get). Writes are made
through the site settings and the project page.
"""
from __future__ import annotations

import json

from django.http import HttpRequest, HttpResponse

from xnatlite import permissions, rest
from xnatlite.auth import xnat_api
from xnatlite.models import FilterMode, Project
from xnatlite.selectors import site_config_get

from .api_anon import config_get

RESERVED = ("enabled", "strict", "projectId", "default", "mode")


def filter_contents(*, mode: str, text: str, enabled: bool, project_id: str = "") -> str:
    """The stored JSON of a series import filter (XNAT's SeriesImportFilter.toMap: mode, enabled, projectId,
    list; a modality map keeps its ``KEY: expression`` lines as keys)."""
    body: dict[str, object] = {"mode": mode, "enabled": enabled}
    if project_id:
        body["projectId"] = project_id
    if mode == FilterMode.MODALITY_MAP:
        for line in text.splitlines():
            key, sep, expression = line.partition(":")
            if sep and key.strip():
                body[key.strip()] = expression.strip()
    else:
        body["list"] = text
    return json.dumps(body)


def _read_only(request: HttpRequest) -> HttpResponse | None:
    if request.method not in ("GET", "HEAD"):
        return rest.text("Method not allowed: change this through the site settings or the project page.\n",
                         status=405)
    return None


def _project(request: HttpRequest, project_id: str) -> Project | HttpResponse:
    """The project a read of its config names, or the answer to give instead (405 for a write, 404)."""
    refused = _read_only(request)
    if refused is not None:
        return refused
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(request.user, project.pk):
        return rest.not_found(f"Unknown project: {project_id}")
    return project


@xnat_api
def site_series_import_filter(request: HttpRequest) -> HttpResponse:
    refused = _read_only(request)
    if refused is not None:
        return refused
    c = site_config_get()
    contents = filter_contents(mode=c.sitewide_series_import_filter_mode, text=c.sitewide_series_import_filter,
                               enabled=c.enable_sitewide_series_import_filter)
    return config_get(request, path="config", project="", contents=contents,
                      enabled=c.enable_sitewide_series_import_filter, tool="seriesImportFilter")


@xnat_api
def project_series_import_filter(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project(request, project_id)
    if isinstance(project, HttpResponse):
        return project
    contents = filter_contents(mode=project.series_import_filter_mode, text=project.series_import_filter,
                               enabled=project.series_import_filter_enabled, project_id=project.pk)
    return config_get(request, path="config", project=project.pk, contents=contents,
                      enabled=project.series_import_filter_enabled, tool="seriesImportFilter")


@xnat_api
def site_tracers(request: HttpRequest) -> HttpResponse:
    refused = _read_only(request)
    if refused is not None:
        return refused
    tracers = site_config_get().sitewide_pet_tracers
    return config_get(request, path="tracers", project="", contents=tracers, enabled=bool(tracers.strip()),
                      tool="tracers")


@xnat_api
def project_tracers(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project(request, project_id)
    if isinstance(project, HttpResponse):
        return project
    return config_get(request, path="tracers", project=project.pk, contents=project.pet_tracers,
                      enabled=project.pet_tracers_enabled, tool="tracers")


@xnat_api
def site_separate_petmr(request: HttpRequest) -> HttpResponse:
    refused = _read_only(request)
    if refused is not None:
        return refused
    value = site_config_get().sitewide_pet_mr
    return config_get(request, path="config", project="", contents=value, enabled=bool(value),
                      tool="separatePETMR")


@xnat_api
def project_separate_petmr(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project(request, project_id)
    if isinstance(project, HttpResponse):
        return project
    return config_get(request, path="config", project=project.pk, contents=project.pet_mr,
                      enabled=bool(project.pet_mr), tool="separatePETMR")


@xnat_api
def site_applet(request: HttpRequest, name: str) -> HttpResponse:
    refused = _read_only(request)
    if refused is not None:
        return refused
    from upload.client.api import FIELDS

    if name not in FIELDS:
        return rest.not_found(f"No configuration applet/{name}.")
    return config_get(request, path=name, project="", contents="", enabled=False, tool="applet")
