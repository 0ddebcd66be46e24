"""REST for DicomEdit lookup tables (``lookup[table, key]``), in the place of XNAT's config service:

- site tables (site administrators): ``/data/config/anon/lookup`` (GET: the list) and
  ``/data/config/anon/lookup/{name}``;
- a project's tables (its owners and site administrators): ``/data/projects/{id}/config/anon/lookup`` and
  ``/data/projects/{id}/config/anon/lookup/{name}``.

On a table: GET answers the CSV, PUT takes the CSV as the body (or as the multipart file ``file``) and
replaces the table, DELETE removes it. A bad CSV is refused with 400 and the row it is about; nothing
changes.
"""
from __future__ import annotations

import csv
import io

from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse

from anonymization.models import LookupTable
from anonymization.services import lookup_table_delete, lookup_table_put
from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api
from xnatlite.models import Project

MSG_NO_TABLE = "No lookup table named {name}."
MSG_NO_PROJECT = "No project with the ID {project_id}."


def _csv(table: LookupTable) -> HttpResponse:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for key, value in table.entries.items():
        writer.writerow([key, value])
    return HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")


def _body(request: HttpRequest) -> bytes:
    upload = request.FILES.get("file")
    return upload.read() if upload is not None else request.body


def _table(request: HttpRequest, project_id: str | None, name: str | None) -> HttpResponse:
    tables = LookupTable.objects.filter(project_id=project_id) if project_id else \
        LookupTable.objects.filter(project__isnull=True)
    if name is None:
        if request.method != "GET":
            return rest.text("Method not allowed\n", status=405)
        return rest.result_set([{"name": t.name, "project": t.project_id or "", "rows": t.row_count,
                                 "updated": t.updated.isoformat(), "updated_by": t.updated_by}
                                for t in tables.order_by("name")])
    if request.method == "GET":
        table = tables.filter(name=name).first()
        return _csv(table) if table is not None else rest.not_found(MSG_NO_TABLE.format(name=name))
    if request.method in ("PUT", "POST"):
        try:
            table = lookup_table_put(name=name, project_id=project_id, data=_body(request),
                                     actor=request.user.get_username())
        except ValidationError as exc:
            return rest.bad_request(" ".join(exc.messages))
        return JsonResponse({"name": table.name, "project": table.project_id or "", "rows": table.row_count})
    if request.method == "DELETE":
        if not lookup_table_delete(name=name, project_id=project_id):
            return rest.not_found(MSG_NO_TABLE.format(name=name))
        return rest.text("")
    return rest.text("Method not allowed\n", status=405)


@xnat_api
def site_lookup(request: HttpRequest, name: str | None = None) -> HttpResponse:
    if not permissions.is_site_admin(request.user):
        return forbidden("Only site administrators may see or change the site's lookup tables.")
    return _table(request, None, name)


@xnat_api
def project_lookup(request: HttpRequest, project_id: str, name: str | None = None) -> HttpResponse:
    exists = Project.objects.filter(pk=project_id).exists()
    if not exists or not permissions.can_read_project(request.user, project_id):
        return rest.not_found(MSG_NO_PROJECT.format(project_id=project_id))
    if not permissions.can_manage_project(request.user, project_id):
        return forbidden("Only the project's owners may see or change its lookup tables.")
    return _table(request, project_id, name)
