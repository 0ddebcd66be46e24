"""The archive pages (/archive/...): projects, subjects and sessions (read-only for collaborators), the session
download as a zip, metadata edits (which re-run the project script, services.py), quarantine release,
and the audit trail of each project. Quarantined sessions are shown only to those who may see them."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from xnatlite import permissions
from xnatlite.models import ID_VALIDATOR, AuditEvent, ImageSession, Project, Subject
from xnatlite.models import ArchiveJob

from .jobs import JobRefused, archive_job_state, archived_session_update_request, subject_relabel_request
from .services import archived_session_delete, archived_session_quarantine_set
from .snapshots import scan_image_cached


def _project_or_404(request: HttpRequest, project_id: str) -> Project:
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(request.user, project_id):
        raise Http404("No such project.")
    return project


def _sessions(request: HttpRequest, project: Project):
    qs = ImageSession.objects.filter(project=project).select_related("subject")
    if not permissions.can_see_quarantined(request.user, project.pk):
        qs = qs.filter(quarantined=False)
    return qs


def _session_or_404(request: HttpRequest, project_id: str, label: str) -> ImageSession:
    project = _project_or_404(request, project_id)
    session = _sessions(request, project).filter(label=label).first()
    if session is None:
        raise Http404("No such session.")
    return session


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    projects = permissions.projects_for(request.user).annotate(
        n_sessions=Count("sessions", distinct=True), n_subjects=Count("subjects", distinct=True))
    return render(request, "archive/projects.html", {"projects": projects})


@login_required
def project_detail(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project_or_404(request, project_id)
    return render(request, "archive/project.html", {
        "project": project, "sessions": _sessions(request, project).annotate(n_scans=Count("scans")),
        "subjects": Subject.objects.filter(project=project).annotate(
            n_sessions=Count("sessions", filter=Q(sessions__quarantined=False)
                             if not permissions.can_see_quarantined(request.user, project.pk) else Q())),
        "can_manage": permissions.can_manage_project(request.user, project.pk),
    })


class SubjectForm(forms.Form):
    label = forms.CharField(max_length=64, validators=[ID_VALIDATOR])


@login_required
def subject_detail(request: HttpRequest, project_id: str, label: str) -> HttpResponse:
    project = _project_or_404(request, project_id)
    subject = Subject.objects.filter(project=project, label=label).first()
    if subject is None:
        raise Http404("No such subject.")
    can_edit = permissions.can_upload(request.user, project.pk)
    form = SubjectForm(request.POST or None, initial={"label": subject.label})
    if request.method == "POST":
        if not can_edit:
            raise Http404("No such page.")
        if form.is_valid():
            try:
                job = subject_relabel_request(subject=subject, new_label=form.cleaned_data["label"],
                                              actor=request.user.get_username())
            except JobRefused as exc:
                messages.error(request, str(exc))
            else:
                if job is not None:
                    messages.success(request, "Relabel queued: its progress is shown below.")
                return redirect("archive-subject", project.pk, subject.label)
    return render(request, "archive/subject.html", {
        "project": project, "subject": subject, "sessions": _sessions(request, project).filter(subject=subject),
        "form": form, "can_edit": can_edit, "job": _last_job(subject=subject),
    })


def _last_job(**where) -> dict | None:
    job = ArchiveJob.objects.filter(**where).order_by("-created", "-id").first()
    return archive_job_state(job) if job is not None else None


class SessionEditForm(forms.Form):
    project = forms.ChoiceField()
    subject = forms.CharField(max_length=64, validators=[ID_VALIDATOR])
    label = forms.CharField(label="Session", max_length=64, validators=[ID_VALIDATOR])

    def __init__(self, *args, projects: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [(p, p) for p in projects]


@login_required
def session_detail(request: HttpRequest, project_id: str, label: str) -> HttpResponse:
    session = _session_or_404(request, project_id, label)
    can_edit = permissions.can_upload(request.user, session.project_id)
    projects = list(permissions.projects_for(request.user, permissions.UPLOAD_ROLES).values_list("id", flat=True))
    form = SessionEditForm(request.POST or None, projects=projects, initial={
        "project": session.project_id, "subject": session.subject.label, "label": session.label})
    if request.method == "POST":
        if not can_edit:
            raise Http404("No such page.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                job = archived_session_update_request(session=session, actor=request.user.get_username(),
                                                      label=data["label"], subject_label=data["subject"],
                                                      project_id=data["project"])
            except JobRefused as exc:
                messages.error(request, str(exc))
            else:
                if job is not None:
                    messages.success(request, "Edit queued: its progress is shown below.")
                return redirect("archive-session", session.project_id, session.label)
    from prearchive.services.residual import session_findings

    return render(request, "archive/session.html", {
        "s": session, "scans": session.scans.all(), "form": form, "can_edit": can_edit,
        "residual": session_findings(image_session_id=session.pk),
        "can_manage": permissions.can_manage_project(request.user, session.project_id),
        "job": _last_job(session=session),
    })


@login_required
def session_download(request: HttpRequest, project_id: str, label: str) -> HttpResponse:
    from .api_data import session_zip_response

    return session_zip_response(_session_or_404(request, project_id, label))


@login_required
@require_POST
def session_manage(request: HttpRequest, project_id: str, label: str) -> HttpResponse:
    session = _session_or_404(request, project_id, label)
    if not permissions.can_manage_project(request.user, session.project_id):
        raise Http404("No such page.")
    action = request.POST.get("action")
    actor = request.user.get_username()
    if action in ("release", "quarantine"):
        archived_session_quarantine_set(session=session, quarantined=action == "quarantine", actor=actor)
        messages.success(request, "Released from quarantine." if action == "release" else "Quarantined.")
        return redirect("archive-session", session.project_id, session.label)
    if action == "delete":
        archived_session_delete(session=session, actor=actor)
        messages.success(request, f"Session {label} deleted.")
        return redirect("archive-project", session.project_id)
    messages.error(request, "Unknown action.")
    return redirect("archive-session", session.project_id, session.label)


@login_required
def project_audit(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project_or_404(request, project_id)
    events = AuditEvent.objects.filter(Q(project_id=project.pk) | Q(details__old_project=project.pk))[:1000]
    return render(request, "archive/audit.html", {"project": project, "events": events})


# ------------------------------------------------------------------ snapshots, montage and headers of scans
# Images are cached on disk beside the archived files (snapshots.py).

def _scan_files(request: HttpRequest, project_id: str, label: str, scan_id: str):
    from .data import is_data_file, scan_folder

    session = _session_or_404(request, project_id, label)
    scan = session.scans.filter(scan_id=scan_id).first()
    if scan is None:
        raise Http404("No such scan.")
    folder = scan_folder(session, scan)
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_data_file(p.name)) \
        if folder.is_dir() else []
    if not files:
        raise Http404("No files in this scan.")
    return session, scan, files


def _scan_png(*, session, scan, kind: str, sources, render) -> HttpResponse:
    """A cached rendering of a scan as PNG; 204 when its files give no image."""
    try:
        data = scan_image_cached(session=session, scan=scan, kind=kind, sources=sources, render=render)
    except (ValueError, OSError):
        return HttpResponse(status=204)
    response = HttpResponse(data, content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response


@login_required
def scan_snapshot(request: HttpRequest, project_id: str, label: str, scan_id: str) -> HttpResponse:
    """The scan's middle image: small, or up to 1024 px with ?size=full (the enlarged view)."""
    from prearchive.review_dicom import FULL_SIZE, THUMB_SIZE, thumbnail_png

    session, scan, files = _scan_files(request, project_id, label, scan_id)
    full = request.GET.get("size") == "full"
    middle = files[len(files) // 2]
    return _scan_png(session=session, scan=scan, kind="full" if full else "snapshot", sources=[middle],
                     render=lambda: thumbnail_png(middle, size=FULL_SIZE if full else THUMB_SIZE))


@login_required
def scan_montage(request: HttpRequest, project_id: str, label: str, scan_id: str) -> HttpResponse:
    from prearchive.review_dicom import montage_png

    session, scan, files = _scan_files(request, project_id, label, scan_id)
    return _scan_png(session=session, scan=scan, kind="montage", sources=files,
                     render=lambda: montage_png(files))


@login_required
def scan_header(request: HttpRequest, project_id: str, label: str, scan_id: str) -> HttpResponse:
    """The DICOM header of one file of the scan (?file=N, default the middle one)."""
    from prearchive.review_dicom import header_rows

    session, scan, files = _scan_files(request, project_id, label, scan_id)
    try:
        index = min(max(int(request.GET.get("file", len(files) // 2 + 1)) - 1, 0), len(files) - 1)
    except ValueError:
        index = len(files) // 2
    try:
        rows, error = header_rows(files[index]), ""
    except Exception as exc:  # noqa: BLE001 - an unreadable file: say so, never a 500
        rows, error = [], f"The file could not be read ({type(exc).__name__})."
    return render(request, "archive/header.html", {
        "s": session, "scan": scan, "rows": rows, "error": error, "position": index + 1, "count": len(files),
        "prev": index if index > 0 else None, "next": index + 2 if index + 1 < len(files) else None})
