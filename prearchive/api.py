"""/data/prearchive REST (reference/xnat.md §3): listings and the session document, XNAT's shapes.

GET  /data/prearchive                          sessions of the projects the user reviews (+ Unassigned for
                                               site admins); ?tag=StudyInstanceUID (admins only);
                                               ?format=json|csv|xml|html (pyxnat reads csv)
PUT  /data/prearchive                          reload the database from the file tree (site admins)
GET  /data/prearchive/projects/{p[,p2]}        the same, for those projects ("Unassigned" included)
GET  /data/prearchive/projects/{p}/{ts}/{f}    ?format=xml: the session document; json (default): the row
"""
from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_http_methods

from xnatlite import permissions, rest
from xnatlite.archive.formats import list_response
from xnatlite.auth import forbidden, xnat_api

from .models import UNASSIGNED, PrearchiveSession
from .selectors import session_by_uri_parts, sessions_for_user
from .services import storage

MSG_NO_DOCUMENT = "The XNAT session document is not available for this session; it has not been built yet."
MSG_NOT_FOUND = "No prearchive session at this address."


def _dt(value) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] if value else ""


def session_row(s: PrearchiveSession) -> dict[str, Any]:
    """One row with XNAT's column names (xdat_search.prearchive), plus xnatlite's counts and reason."""
    return {
        "project": s.project_label, "timestamp": s.timestamp, "lastmod": _dt(s.lastmod),
        "uploaded": _dt(s.uploaded), "scan_date": s.scan_date.isoformat() if s.scan_date else "",
        "scan_time": s.scan_time.isoformat() if s.scan_time else "", "subject": s.subject,
        "folderName": s.folder_name, "name": s.name, "tag": s.tag, "status": s.status, "url": s.uri[len("/data"):],
        "autoarchive": "" if s.autoarchive is None else str(s.autoarchive),
        "prevent_anon": str(s.prevent_anon).lower(), "prevent_auto_commit": str(s.prevent_auto_commit).lower(),
        "SOURCE": s.source, "VISIT": s.visit, "PROTOCOL": s.protocol, "TIMEZONE": s.timezone,
        "modality": s.modality, "files": s.file_count, "filtered": s.filtered_count,
        "rejected": s.rejected_count, "message": s.error_message, "pet_tracer": s.pet_tracer,
    }


@xnat_api
@require_http_methods(["GET", "PUT"])
def prearchive_list(request: HttpRequest) -> HttpResponse:
    if request.method == "PUT":
        if not permissions.is_site_admin(request.user):
            return forbidden("Only site administrators may refresh the prearchive.")
        from .services.reload import prearchive_reload

        report = prearchive_reload()
        return rest.text(f"Reloaded: {report.rows_created} created, {report.rows_removed} removed\n")
    sessions = sessions_for_user(user=request.user)
    tag = request.GET.get("tag")
    if tag:
        if not permissions.is_site_admin(request.user):
            return forbidden("Only site administrators may search the prearchive by tag.")
        sessions = sessions.filter(tag=tag)
    return list_response(request, (session_row(s) for s in sessions), title="Prearchive")


@xnat_api
@require_http_methods(["GET"])
def prearchive_projects(request: HttpRequest, projects: str) -> HttpResponse:
    names = [p for p in projects.split(",") if p]
    return list_response(request, (session_row(s) for s in sessions_for_user(user=request.user, projects=names)),
                         title="Prearchive")


@xnat_api
@require_http_methods(["GET"])
def prearchive_session(request: HttpRequest, project: str, timestamp: str, folder: str) -> HttpResponse:
    session = session_by_uri_parts(project=project, timestamp=timestamp, folder=folder)
    if session is None or not permissions.can_review_prearchive(request.user, session.project_id):
        return rest.not_found(MSG_NOT_FOUND)
    fmt = request.GET.get("format", "json").lower()
    if fmt == "xml":
        path = storage.root() / session.document_relative_path
        if not session.document or not path.is_file():
            return rest.not_found(MSG_NO_DOCUMENT)
        return HttpResponse(path.read_bytes(), content_type="text/xml; charset=utf-8")
    row = session_row(session)
    from .services.script_state import session_notes

    row["processing"] = session_notes(session_id=session.pk)  # what the scripts echoed: for its reviewers
    from .services.residual import session_findings

    row["residual_phi"] = [f["message"] for f in session_findings(session_id=session.pk)]
    if request.GET.get("document", "").lower() == "true" or fmt == "json-document":
        row["document"] = session.document
    return rest.result_set([row], title="Prearchive")


def project_label(project_id: str | None) -> str:
    return project_id or UNASSIGNED
