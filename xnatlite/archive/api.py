"""XNAT REST for the review actions (reference/xnat.md §3):

- ``POST /data/prearchive/projects/{p}/{ts}/{folder}?action=build|commit|move|reset-status|set-status`` and
  ``DELETE`` on the same path (GET is the intake engineer's view: delegated);
- ``POST /data/services/prearchive/{move,delete,rebuild}`` (``src`` repeatable, ``newProject``, ``async``);
- ``POST /data/services/archive`` (``src``, ``dest``, ``overwrite``, ``project``, ``subject_ID``/``subject``,
  ``label``/``session``, ``quarantine``, tracer fields). Synchronous, as XNAT's Archiver: it answers the
  archive URI (text/uri-list) once the session is archived, 409 with the reasons on a conflict.
Views translate and call services; errors are 4xx with a plain message, never a 500.
"""
from __future__ import annotations

import re

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import get_resolver

from prearchive.models import UNASSIGNED, PrearchiveSession
from prearchive.services.archive import (ArchiveConflict, ArchiveError, archive_uri, session_archive,
                                         session_archive_request, target_for)
from prearchive.services.delete import DeleteError, session_delete, session_delete_request
from prearchive.services.move import MoveError, session_move, session_move_request
from prearchive.services.rebuild import RebuildError, session_rebuild_request
from xnatlite import permissions, rest
from xnatlite.auth import forbidden, xnat_api

Status = PrearchiveSession.Status
SRC_RE = re.compile(r"^(?:/data|/REST)?/prearchive/projects/(?P<p>[^/]+)/(?P<ts>[^/]+)/(?P<folder>[^/?]+)/?$")
TRACER_FIELDS = ("xnat:petSessionData/tracer/name", "xnat:petMrSessionData/tracer/name", "tracer")


def uri_list(*uris: str, status: int = 200) -> HttpResponse:
    return HttpResponse("".join(u + "\r\n" for u in uris), status=status, content_type="text/uri-list")


def session_lookup(project: str, timestamp: str, folder: str) -> PrearchiveSession | None:
    project_id = None if project == UNASSIGNED else project
    return PrearchiveSession.objects.filter(project_id=project_id, timestamp=timestamp,
                                            folder_name=folder).select_related("project").first()


def session_from_src(src: str) -> PrearchiveSession | None:
    m = SRC_RE.match((src or "").strip())
    return session_lookup(m["p"], m["ts"], m["folder"]) if m else None


def _params(request: HttpRequest) -> dict[str, list[str]]:
    """Query string and form fields together (XNAT treats them alike)."""
    out: dict[str, list[str]] = {}
    for source in (request.GET, request.POST):
        for key in source:
            out.setdefault(key, []).extend(source.getlist(key))
    return out


def _one(params: dict[str, list[str]], *names: str) -> str:
    for name in names:
        values = [v for v in params.get(name, []) if v != ""]
        if values:
            return values[0]
    return ""


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "1", "yes", "t")


def _delegate_get(request: HttpRequest, path: str):
    """The intake engineer's GET view for the same path: the first other pattern that matches."""
    mine = "xnatlite.archive.urls"
    for pattern in get_resolver().url_patterns:
        if getattr(pattern, "urlconf_name", None) == mine or getattr(
                getattr(pattern, "urlconf_module", None), "__name__", "") == mine:
            continue
        try:
            match = pattern.resolve(path)
        except Exception:  # noqa: BLE001 - Resolver404 and friends: try the next one
            continue
        if match:
            return match.func(request, *match.args, **match.kwargs)
    raise Http404("No such prearchive session.")


@xnat_api
def prearchive_session(request: HttpRequest, project: str, timestamp: str, folder: str) -> HttpResponse:
    if request.method in ("GET", "HEAD"):
        return _delegate_get(request, request.path_info.lstrip("/"))
    if request.method not in ("POST", "DELETE", "PUT"):
        return rest.text("Method not allowed\n", status=405)
    session = session_lookup(project, timestamp, folder)
    if session is None or not permissions.can_review_prearchive(request.user, session.project_id):
        return rest.not_found(MSG_NO_SESSION)  # the same for a session this user may not see
    actor = request.user.get_username()
    if request.method == "DELETE":
        try:
            session_delete_request(session=session, actor=actor)
        except DeleteError as exc:
            return rest.text(f"{exc}\n", status=409)
        return rest.text("")
    params = _params(request)
    action = _one(params, "action").lower()
    try:
        if action in ("build", "rebuild"):
            session_rebuild_request(session=session, actor=actor)
            return uri_list(session.uri)
        if action == "commit":
            return _commit(session, params, actor)
        if action == "move":
            new_project = _one(params, "newProject")
            refused = _move_target_refused(request, new_project)
            if refused is not None:
                return refused
            session_move_request(session=session, new_project=new_project, actor=actor)
            return uri_list(f"/data/prearchive/projects/{new_project}/{session.timestamp}/{session.folder_name}")
        if action == "reset-status":
            return _reset_status(session)
        if action == "set-status":
            return _set_status(request, session, _one(params, "status"))
    except (ArchiveError, MoveError, RebuildError, DeleteError) as exc:
        return rest.text(f"{exc}\n", status=409)
    return rest.bad_request("Unknown action: use build, commit, move, reset-status or set-status.")


MSG_NO_SESSION = "No such prearchive session."
MSG_BAD_SRC = "src uri is invalid."
MSG_NO_DEST = "unable to identify destination project"


def _move_target_refused(request: HttpRequest, new_project: str) -> HttpResponse | None:
    """404 for a target project that does not exist or that the user cannot see (alike), 403 for one they
    see but may not review; None when the move may go on."""
    if new_project and not permissions.project_visible(request.user, new_project):
        return rest.not_found(f"No project with the ID {new_project}.")
    if not permissions.can_review_prearchive(request.user, new_project or None):
        return forbidden("You may not move sessions into that project.")
    return None


def _commit(session: PrearchiveSession, params, actor: str) -> HttpResponse:
    """Build now, with the request's subject, label, tracer and overwrite (services/archive.session_commit)."""
    from prearchive.services.archive import session_commit

    status = session_commit(session=session, actor=actor, subject=_one(params, "subject_ID", "subject"),
                            label=_one(params, "label", "session"), tracer=_one(params, *TRACER_FIELDS),
                            overwrite=_one(params, "overwrite"))
    if status is None:
        return rest.text("Session document locked: an operation is in progress.\n", status=409)
    return uri_list(session.uri)


def _reset_status(session: PrearchiveSession) -> HttpResponse:
    """Unstick a session whose job is gone: READY when built, else RECEIVING (files are never touched)."""
    from prearchive.services.joblock import job_lock_free

    if not job_lock_free("session", session.pk):
        return rest.text("Operation already in progress on this prearchive entry.\n", status=409)
    new = Status.READY if session.built_at else Status.RECEIVING
    PrearchiveSession.objects.filter(pk=session.pk, status=session.status).update(status=new)
    return uri_list(session.uri)


def _set_status(request: HttpRequest, session: PrearchiveSession, status: str) -> HttpResponse:
    if not permissions.is_site_admin(request.user):
        return forbidden("Only site administrators may force a status.")
    if status not in Status.values:
        return rest.bad_request(f"Unknown status: {status}")
    PrearchiveSession.objects.filter(pk=session.pk, status=session.status).update(status=status)
    return uri_list(session.uri)


# ------------------------------------------------------------------ /data/services/prearchive/*


def _sources(request: HttpRequest, params) -> tuple[list[PrearchiveSession], HttpResponse | None]:
    srcs = params.get("src", [])
    if not srcs:
        return [], rest.bad_request("src is required.")
    sessions = []
    for src in srcs:
        session = session_from_src(src)
        if session is None or not permissions.can_review_prearchive(request.user, session.project_id):
            return [], rest.not_found(MSG_BAD_SRC)  # the same for a session this user may not see
        sessions.append(session)
    return sessions, None


@xnat_api
def services_prearchive(request: HttpRequest, operation: str) -> HttpResponse:
    if request.method != "POST":
        return rest.text("Method not allowed\n", status=405)
    params = _params(request)
    sessions, error = _sources(request, params)
    if error is not None:
        return error
    actor = request.user.get_username()
    wait = not _truthy(_one(params, "async") or "true")
    uris = []
    try:
        for session in sessions:
            if operation == "move":
                new_project = _one(params, "newProject")
                refused = _move_target_refused(request, new_project)
                if refused is not None:
                    return refused
                session_move_request(session=session, new_project=new_project, actor=actor)
                if wait:
                    session_move(session_id=session.pk)
                uris.append(f"/data/prearchive/projects/{new_project}/{session.timestamp}/{session.folder_name}")
            elif operation == "delete":
                session_delete_request(session=session, actor=actor)
                if wait:
                    session_delete(session_id=session.pk)
                uris.append(session.uri)
            else:
                session_rebuild_request(session=session, actor=actor)
                uris.append(session.uri)
    except (MoveError, DeleteError, RebuildError) as exc:
        return rest.text(f"{exc}\n", status=409)
    return uri_list(*uris)


# ------------------------------------------------------------------ /data/services/archive

DEST_RE = re.compile(r"^(?:/data)?/archive/projects/(?P<p>[^/]+)(?:/subjects/(?P<s>[^/]+)(?:/experiments/(?P<e>[^/]+))?)?/?$")


@xnat_api
def services_archive(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return rest.text("Method not allowed\n", status=405)
    params = _params(request)
    src = _one(params, "src")
    if not src and _one(params, "PREARC_TIMESTAMP"):
        src = (f"/prearchive/projects/{_one(params, 'project')}/{_one(params, 'PREARC_TIMESTAMP')}/"
               f"{_one(params, 'PREARC_SESSION_FOLDER')}")
    session = session_from_src(src)
    if session is None or not permissions.can_review_prearchive(request.user, session.project_id):
        return rest.not_found(MSG_BAD_SRC)  # the same for a session this user may not see
    dest = DEST_RE.match(_one(params, "dest")) if _one(params, "dest") else None
    project = _one(params, "project") or (dest["p"] if dest else "") or session.project_id or ""
    subject = _one(params, "subject_ID", "subject") or (dest["s"] if dest and dest["s"] else "")
    label = _one(params, "label", "session") or (dest["e"] if dest and dest["e"] else "")
    if project and not permissions.project_visible(request.user, project):
        return rest.not_found(MSG_NO_DEST)
    if project and not permissions.can_upload(request.user, project):
        return forbidden("You may not archive into that project.")
    quarantine = _one(params, "quarantine")
    try:
        session_archive_request(session=session, actor=request.user.get_username(), project_id=project or None,
                                subject=subject or None, label=label or None,
                                overwrite=_one(params, "overwrite"), tracer=_one(params, *TRACER_FIELDS),
                                quarantine=_truthy(quarantine) if quarantine else None)
    except ArchiveConflict as exc:
        return rest.text(f"{exc}\n", status=409)
    except ArchiveError as exc:
        return rest.text(f"{exc}\n", status=403)
    target = target_for(session)
    if _truthy(_one(params, "async")):
        return uri_list(archive_uri(target.project_id or "", target.subject, target.label))
    outcome = session_archive(session_id=session.pk)
    if outcome in ("archived", "busy"):
        uri = archive_uri(target.project_id or "", target.subject, target.label)
        if _truthy(_one(params, "redirect")):
            response = uri_list(uri, status=303)
            response["Location"] = uri
            return response
        return uri_list(uri)
    session.refresh_from_db()
    if outcome == "interrupted":
        return rest.text("New files arrived for this session; it was not archived.\n", status=409)
    return rest.text(session.error_message.rstrip() + "\n", status=409 if outcome == "conflict" else 400)
