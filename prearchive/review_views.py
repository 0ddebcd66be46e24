"""The reviewer's prearchive pages (seed 004 "Review and Archive"): the list with filters, sorting and bulk
actions; a session page with scans, thumbnails, DICOM headers and burned-in-PHI flags; the actions (rebuild,
move, delete, Review and Archive), each queued as a Celery job whose progress and outcome the page polls.
Views translate and call services; permissions come from xnatlite.permissions."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from prearchive.models import UNASSIGNED, PrearchiveFile, PrearchiveSession
from prearchive.review_dicom import (FULL_SIZE, THUMB_SIZE, burned_in_flags, header_rows, label_identifier_warnings,
                                    thumbnail_png)
from prearchive.services.archive import ArchiveError, session_archive_progress, session_archive_request
from prearchive.services.conflicts import OVERWRITE_MODES
from prearchive.services.delete import DeleteError, session_delete_request
from prearchive.services.jobfile import session_dir
from prearchive.services.move import MoveError, session_move_request
from prearchive.services import residual, script_state
from prearchive.services.idle import idle_seconds
from prearchive.services.rebuild import RebuildError, session_rebuild_request
from prearchive.status_text import build_expected_at, conflict_explain, legend, status_words
from xnatlite import permissions
from xnatlite.auth import redirect_target
from xnatlite.models import AuditEvent, ID_VALIDATOR

Status = PrearchiveSession.Status
ACTION_ERRORS = (ArchiveError, MoveError, DeleteError, RebuildError)
SORTS = {"project": "project_id", "subject": "subject", "label": "name", "scan_date": "scan_date",
         "uploaded": "uploaded", "status": "status", "files": "file_count", "source": "source",
         "lastmod": "lastmod"}
RUNNING = (Status.QUEUED_ARCHIVING, Status.ARCHIVING, Status.QUEUED_MOVING, Status.MOVING, Status.QUEUED_DELETING,
           Status.DELETING, Status.QUEUED_BUILDING, Status.BUILDING, Status.SEPARATING, Status.QUEUED_SEPARATING)


def _visible(user):
    """Sessions the user may review: their projects (owner/member); Unassigned for site admins."""
    qs = PrearchiveSession.objects.select_related("project")
    if permissions.is_site_admin(user):
        return qs
    ids = permissions.project_ids_for(user, permissions.UPLOAD_ROLES)
    return qs.filter(project_id__in=ids)


def _session_or_404(request: HttpRequest, pk: int) -> PrearchiveSession:
    session = _visible(request.user).filter(pk=pk).first()
    if session is None:
        raise Http404("No such prearchive session.")
    return session


def _listed(request: HttpRequest):
    """The sessions of the list page (and its JSON), with the page's filters and sort."""
    qs = _visible(request.user)
    project = request.GET.get("project", "")
    status = request.GET.get("status", "")
    text = request.GET.get("q", "").strip()
    if project == UNASSIGNED:
        qs = qs.filter(project__isnull=True)
    elif project:
        qs = qs.filter(project_id=project)
    if status:
        qs = qs.filter(status=status)
    if text:
        qs = qs.filter(Q(subject__icontains=text) | Q(name__icontains=text) | Q(source__icontains=text))
    sort = request.GET.get("sort", "-uploaded")
    field = SORTS.get(sort.lstrip("-"), "uploaded")
    qs = qs.order_by(("-" if sort.startswith("-") else "") + field, "-pk")
    return qs, {"f_project": project, "f_status": status, "f_q": text, "sort": sort}


def _files_received(sessions: list[PrearchiveSession]) -> dict[int, int]:
    """Files received so far by sessions still receiving (their file_count is set when they are built)."""
    receiving = [s.pk for s in sessions if s.status in PrearchiveSession.RECEIVING_STATUSES]
    if not receiving:
        return {}
    return dict(PrearchiveFile.objects.filter(session_id__in=receiving).values("session_id")
                .annotate(n=Count("pk")).values_list("session_id", "n"))


def _live(session: PrearchiveSession, received: dict[int, int], idle: float) -> dict:
    """What the pages show of a session and refresh on their own: status words, files, times."""
    build_at = build_expected_at(session, idle)
    files = received.get(session.pk, session.file_count)
    return {
        "id": session.pk, "status": session.status, "status_text": status_words(session.status),
        "files": files, "last_file": session.lastmod.isoformat(), "last_file_text": _when(session.lastmod),
        "build_at": build_at.isoformat() if build_at else None,
        "build_at_text": _when(build_at) if build_at else "",
        "receiving_note": ("waits for its uploader to finish" if session.status == Status.RECEIVING and build_at is None
                           else ""),
    }


def _when(value) -> str:
    from django.utils import timezone

    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def _row(session: PrearchiveSession, received: dict[int, int], idle: float) -> dict:
    return {**_live(session, received, idle), "project": session.project_label, "subject": session.subject,
            "label": session.name, "scan_date": session.scan_date.isoformat() if session.scan_date else "",
            "uploaded": _when(session.uploaded)[:16], "source": session.source,
            "url": reverse("prearchive-session", args=[session.pk])}


@login_required
def session_list(request: HttpRequest) -> HttpResponse:
    qs, filters = _listed(request)
    sessions = list(qs[:500])
    received, idle = _files_received(sessions), idle_seconds()
    projects = list(permissions.projects_for(request.user, permissions.UPLOAD_ROLES).values_list("id", flat=True))
    return render(request, "prearchive/list.html", {
        "rows": [{"s": s, "live": _live(s, received, idle)} for s in sessions], "projects": projects,
        "statuses": Status.values, **filters, "is_admin": permissions.is_site_admin(request.user),
        "unassigned": UNASSIGNED, "sort_keys": list(SORTS), "legend": legend(),
    })


@login_required
def session_list_json(request: HttpRequest) -> JsonResponse:
    """The list page's rows, polled by the page so it stays current without a reload."""
    qs, _ = _listed(request)
    sessions = list(qs[:500])
    received, idle = _files_received(sessions), idle_seconds()
    return JsonResponse({"sessions": [_row(s, received, idle) for s in sessions]})


@login_required
@require_POST
def bulk_action(request: HttpRequest) -> HttpResponse:
    action = request.POST.get("action", "")
    ids = [int(i) for i in request.POST.getlist("session") if i.isdigit()]
    sessions = list(_visible(request.user).filter(pk__in=ids))
    actor = request.user.get_username()
    done, failed = 0, []
    for session in sessions:
        try:
            if not _request_action(request=request, session=session, action=action, actor=actor,
                                   allowed=("rebuild", "delete", "archive", "move")):
                messages.error(request, "Choose an action.")
                return redirect("prearchive-list")
            done += 1
        except ACTION_ERRORS as exc:
            failed.append(f"{session.name}: {exc}")
    if done:
        messages.success(request, f"{action.capitalize()}: {done} session(s) queued.")
    for message in failed:
        messages.error(request, message)
    return redirect(redirect_target(request, request.POST.get("next"), reverse("prearchive-list")))


def _scans(session: PrearchiveSession) -> list[dict]:
    rows = (PrearchiveFile.objects.filter(session=session).values("scan_id")
            .annotate(files=Count("pk")).order_by("scan_id"))
    scans = []
    base = session_dir(session)
    for row in rows:
        files = list(PrearchiveFile.objects.filter(session=session, scan_id=row["scan_id"])
                     .order_by("instance_number", "relative_path").values_list("pk", flat=True))
        middle = PrearchiveFile.objects.get(pk=files[len(files) // 2])
        frames = sum(PrearchiveFile.objects.filter(session=session, scan_id=row["scan_id"])
                     .values_list("frames", flat=True))
        scans.append({
            "id": row["scan_id"], "files": row["files"], "frames": frames, "middle": middle,
            "series_description": middle.series_description, "modality": middle.modality,
            "flags": burned_in_flags(modality=middle.modality, sop_class_uid=middle.sop_class_uid,
                                     image_type=middle.image_type, path=base / middle.relative_path),
            "file_ids": files,
        })
    scans.sort(key=lambda s: (0, int(s["id"]), "") if s["id"].isdigit() else (1, 0, s["id"]))
    return scans


def _archived_event(request: HttpRequest, pk: int) -> AuditEvent | None:
    event = AuditEvent.objects.filter(action="session_archive", details__prearchive_id=pk).first()
    if event is None or not permissions.can_read_project(request.user, event.project_id):
        return None
    return event


def _archive_page(event: AuditEvent) -> str:
    return reverse("archive-session", args=[event.project_id, event.session_label])


@login_required
def session_detail(request: HttpRequest, pk: int) -> HttpResponse:
    session = _visible(request.user).filter(pk=pk).first()
    if session is None:
        event = _archived_event(request, pk)
        if event is not None:
            return redirect(_archive_page(event))
        raise Http404("No such prearchive session.")
    scans = _scans(session)
    return render(request, "prearchive/session.html", {
        "s": session, "scans": scans, "flagged": [s for s in scans if s["flags"]],
        "running": session.status in RUNNING, "legend": legend(),
        "live": _live(session, _files_received([session]), idle_seconds()),
        "conflict": conflict_explain(session.error_message) if session.status == Status.CONFLICT else None,
        "notes": script_state.session_notes(session_id=session.pk),
        "residual": residual.session_findings(session_id=session.pk),
        "projects": list(permissions.projects_for(request.user, permissions.UPLOAD_ROLES)
                         .exclude(pk=session.project_id).values_list("id", flat=True)),
    })


@login_required
def session_status(request: HttpRequest, pk: int) -> JsonResponse:
    session = _visible(request.user).filter(pk=pk).first()
    if session is None:
        event = _archived_event(request, pk)
        if event is not None:
            return JsonResponse({"status": "ARCHIVED", "done": True, "url": _archive_page(event),
                                 "message": f"Archived as {event.project_id}/{event.session_label}."})
        deleted = AuditEvent.objects.filter(action="prearchive_delete", details__prearchive_id=pk).exists()
        return JsonResponse({"status": "DELETED" if deleted else "GONE", "done": True, "url": reverse("prearchive-list"),
                             "message": "The session is no longer in the prearchive."})
    progress = session_archive_progress(session=session)
    live = _live(session, _files_received([session]), idle_seconds())
    if session.status == Status.CONFLICT:
        live["conflict"] = conflict_explain(session.error_message)
    return JsonResponse({**live, "status": session.status, "done": session.status not in RUNNING,
                         "message": session.error_message, "progress": progress, "project": session.project_label,
                         "url": reverse("prearchive-session", args=[session.pk])})


@login_required
def scan_thumbnail(request: HttpRequest, pk: int, scan_id: str) -> HttpResponse:
    """The scan's middle image: small, or up to FULL_SIZE px with ?size=full (the enlarged view)."""
    session = _session_or_404(request, pk)
    files = list(PrearchiveFile.objects.filter(session=session, scan_id=scan_id)
                 .order_by("instance_number", "relative_path").values_list("relative_path", flat=True))
    if not files:
        raise Http404("No such scan.")
    try:
        data = thumbnail_png(session_dir(session) / files[len(files) // 2],
                             size=FULL_SIZE if request.GET.get("size") == "full" else THUMB_SIZE)
    except (ValueError, OSError):
        return HttpResponse(status=204)
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=60"
    return response


@login_required
def file_header(request: HttpRequest, pk: int, file_id: int) -> HttpResponse:
    session = _session_or_404(request, pk)
    row = PrearchiveFile.objects.filter(session=session, pk=file_id).first()
    if row is None:
        raise Http404("No such file.")
    try:
        rows = header_rows(session_dir(session) / row.relative_path)
        error = ""
    except Exception as exc:  # noqa: BLE001 - unreadable file: say so, never a 500
        rows, error = [], f"The file could not be read ({type(exc).__name__})."
    siblings = list(PrearchiveFile.objects.filter(session=session, scan_id=row.scan_id)
                    .order_by("instance_number", "relative_path").values_list("pk", flat=True))
    index = siblings.index(row.pk)
    return render(request, "prearchive/header.html", {
        "s": session, "f": row, "rows": rows, "error": error, "position": index + 1, "count": len(siblings),
        "prev": siblings[index - 1] if index > 0 else None,
        "next": siblings[index + 1] if index + 1 < len(siblings) else None,
    })


@login_required
@require_POST
def session_action(request: HttpRequest, pk: int) -> HttpResponse:
    session = _session_or_404(request, pk)
    action = request.POST.get("action", "")
    actor = request.user.get_username()
    if action == "check_phi":
        found = residual.session_residual_check(session_id=session.pk)
        messages.info(request, f"Residual-PHI check: {len(found)} finding(s)." if found else
                      "Residual-PHI check: nothing found.")
        return redirect("prearchive-session", pk=pk)
    try:
        if not _request_action(request=request, session=session, action=action, actor=actor,
                               allowed=("rebuild", "delete", "move")):
            messages.error(request, "Unknown action.")
            return redirect("prearchive-session", pk=pk)
    except ACTION_ERRORS as exc:
        messages.error(request, str(exc))
        return redirect("prearchive-session", pk=pk)
    messages.success(request, f"{action.capitalize()} queued.")
    return redirect("prearchive-session", pk=pk)


class ArchiveForm(forms.Form):
    project = forms.ChoiceField()
    subject = forms.CharField(max_length=64, validators=[ID_VALIDATOR])
    label = forms.CharField(label="Session", max_length=64, validators=[ID_VALIDATOR])
    overwrite = forms.ChoiceField(choices=[(m, m) for m in OVERWRITE_MODES], initial="none",
                                  help_text="none: stop if the session exists; append: add to it; "
                                            "delete: replace it.")
    tracer = forms.CharField(label="PET tracer", max_length=64, required=False)
    labels_checked = forms.BooleanField(
        label="I checked: these labels do not identify the patient", required=False,
        help_text="Asked when a label equals or contains the patient's name or ID from the DICOM headers.")

    def __init__(self, *args, projects: list[str], tracers: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [(p, p) for p in projects]
        if tracers:
            self.fields["tracer"] = forms.ChoiceField(label="PET tracer", required=False,
                                                      choices=[("", "—")] + [(t, t) for t in tracers])


@login_required
def session_archive_form(request: HttpRequest, pk: int) -> HttpResponse:
    session = _session_or_404(request, pk)
    projects = list(permissions.projects_for(request.user, permissions.UPLOAD_ROLES).values_list("id", flat=True))
    tracers = (session.document or {}).get("pet_tracers") or []
    overwrite = request.GET.get("overwrite", "none")
    initial = {"project": session.project_id or "", "subject": session.subject, "label": session.name,
               "overwrite": overwrite if overwrite in OVERWRITE_MODES else "none", "tracer": session.pet_tracer}
    form = ArchiveForm(request.POST or None, initial=initial, projects=projects, tracers=tracers)
    warnings = _label_warnings(session, request.POST.get("subject", session.subject) if request.method == "POST"
                               else session.subject,
                               request.POST.get("label", session.name) if request.method == "POST" else session.name)
    if request.method == "POST" and form.is_valid() and warnings and not form.cleaned_data.get("labels_checked"):
        form.add_error("labels_checked", "These labels look like patient identifiers: change them, or tick this box.")
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            _refuse_receiving(session)
            session_archive_request(session=session, actor=request.user.get_username(), project_id=data["project"],
                                    subject=data["subject"], label=data["label"], overwrite=data["overwrite"],
                                    tracer=data.get("tracer") or "")
        except ArchiveError as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, "Archive queued.")
            return redirect("prearchive-session", pk=pk)
    return render(request, "prearchive/archive_form.html", {"s": session, "form": form, "label_warnings": warnings})


def _label_warnings(session: PrearchiveSession, subject: str, label: str) -> list[str]:
    """Whether the labels look like the patient's name or ID (read from one file's header)."""
    row = PrearchiveFile.objects.filter(session=session).order_by("pk").values_list("relative_path", flat=True).first()
    if row is None:
        return []
    return label_identifier_warnings(path=session_dir(session) / row, labels={"subject": subject, "session": label})


def _request_action(*, request: HttpRequest, session, action: str, actor: str, allowed: tuple[str, ...]) -> bool:
    """Queue one review action on ``session``; False for an action not in ``allowed``. Raises ACTION_ERRORS."""
    if action not in allowed:
        return False
    if action == "rebuild":
        session_rebuild_request(session=session, actor=actor)
    elif action == "delete":
        session_delete_request(session=session, actor=actor)
    elif action == "archive":
        _refuse_receiving(session)
        session_archive_request(session=session, actor=actor)
    elif action == "move":
        new_project = request.POST.get("new_project", "")
        if not permissions.can_review_prearchive(request.user, new_project or None):
            raise MoveError("You may not move sessions into that project.")
        session_move_request(session=session, new_project=new_project, actor=actor)
    return True


def _refuse_receiving(session: PrearchiveSession) -> None:
    """Archiving a session that is still receiving: say so (and when it will be ready), instead of the
    service's generic "operation in progress"."""
    if session.status not in PrearchiveSession.RECEIVING_STATUSES:
        return
    build_at = build_expected_at(session, idle_seconds())
    when = (f" It will be built at about {_when(build_at)} if no more files arrive; archive it once it is ready."
            if build_at else " It waits for its uploader to finish sending.")
    raise ArchiveError(f"{session.name} is still receiving files ({_files_received([session]).get(session.pk, 0)} "
                       f"so far).{when}")
