"""One upload history for every way in (issue 15): compressed-uploader jobs (UploadJob), "Upload sessions"
transfers (Transfer), REST and inbox imports (their ``import_receive`` audit events) and, for site admins
only, C-STORE receipt (``prearchive_receive`` events, one per session the receiver started, and the files the
receiver refused without a session, per day, from IntakeRejection).

Each row: when, the way in, who, project, state, stored / filtered / refused counts and links to the
sessions. Users other than site admins see only their own uploads and imports (a C-STORE sender is not a
user). Nothing here reads a file name of an archive into a log; the page shows the uploader's own file names
only to them (and to site admins), as the Transfers page does.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncDate
from django.urls import reverse

PER_KIND = 100  # rows read of each kind (newest first), before they are merged by time
SHOWN = 200


@dataclass
class HistoryRow:
    at: datetime
    kind: str
    who: str
    project: str
    state: str
    stored: int | None = None
    filtered: int | None = None
    refused: int | None = None
    sessions: list[tuple[str, str]] = field(default_factory=list)  # (label, page or "")
    page: str = ""  # the upload's own page (jobs have none beyond the uploader)
    name: str = ""  # the uploaded file's name, shown to its uploader (and admins)
    whole_day: bool = False  # a row that sums a day (refusals without a session)


def _prearchive_links(ids: list[int], labels: list[str]) -> list[tuple[str, str]]:
    """Links to the prearchive pages (which redirect to the archive once a session is archived)."""
    out = []
    for i, pk in enumerate(ids):
        label = labels[i] if i < len(labels) else f"session {pk}"
        out.append((label, reverse("prearchive-session", args=[pk])))
    return out


def _summary_links(summary: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s.get("label") or s.get("uri", ""), s.get("page", "")) for s in (summary or {}).get("sessions", [])]


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def upload_history(*, user) -> list[HistoryRow]:
    """The rows ``user`` may see, newest first (at most SHOWN)."""
    from prearchive.models import IntakeRejection, PrearchiveSession
    from upload.client.models import Transfer
    from upload.client.services import transfer_filtered_count
    from upload.models import UploadJob
    from xnatlite.models import AuditEvent

    admin = bool(user.is_superuser)
    rows: list[HistoryRow] = []

    jobs = UploadJob.objects.select_related("user").order_by("-created")
    if not admin:
        jobs = jobs.filter(user=user)
    for job in jobs[:PER_KIND]:
        s = job.summary or {}
        done = job.status in (UploadJob.Status.DONE, UploadJob.Status.FAILED)
        rows.append(HistoryRow(
            at=job.created, kind="Compressed uploader", who=job.user.get_username(), project=job.project_id,
            state=job.get_status_display(), stored=_int(s.get("stored")) if done else None,
            filtered=_int(s.get("filtered")) if done else None, refused=_int(s.get("rejected")) if done else None,
            sessions=_summary_links(s), name=job.file_name))

    transfers = Transfer.objects.select_related("user").order_by("-created")
    if not admin:
        transfers = transfers.filter(user=user)
    for t in transfers[:PER_KIND]:
        s = t.summary or {}
        finished = bool(s)
        rows.append(HistoryRow(
            at=t.created, kind="Upload sessions", who=t.user.get_username(), project=t.project_id,
            state=t.get_status_display(), stored=_int(s.get("stored")) if finished else None,
            filtered=transfer_filtered_count(transfer=t) if finished or t.choices else None,
            refused=_int(s.get("rejected")) if finished else None, sessions=_summary_links(s),
            page=reverse("upload_client_transfer", args=[t.pk]), name=t.file_name))

    imports = AuditEvent.objects.filter(action="import_receive")
    if not admin:
        imports = imports.filter(actor=user.get_username())
    for e in imports[:PER_KIND]:
        d = e.details or {}
        rows.append(HistoryRow(
            at=e.at, kind=f"{d.get('route', 'REST')} import", who=e.actor, project=e.project_id,
            state="Refused" if d.get("reason") else "Done", stored=_int(d.get("stored")),
            filtered=_int(d.get("filtered")), refused=_int(d.get("rejected")),
            sessions=_prearchive_links(list(d.get("prearchive") or []), list(d.get("sessions") or []))))

    if admin:
        received = list(AuditEvent.objects.filter(action="prearchive_receive")[:PER_KIND])
        live = {(s.project_id or "", s.name): s for s in PrearchiveSession.objects.filter(
            name__in={e.session_label for e in received}).annotate(refused=Count("rejections"))}
        for e in received:
            d = e.details or {}
            s = live.get((e.project_id, e.session_label))
            stored = (s.file_count or s.files.count()) if s is not None else None
            rows.append(HistoryRow(
                at=e.at, kind="DICOM C-STORE", who=f"from {d.get('calling_aet') or '?'}",
                project=e.project_id, state=s.get_status_display() if s is not None else "Left the prearchive",
                stored=stored, filtered=s.filtered_count if s is not None else None,
                refused=s.refused if s is not None else None,
                sessions=[(e.session_label, reverse("prearchive-session", args=[s.pk]) if s is not None else "")]))
        refusals = (IntakeRejection.objects.filter(source="dicom", session__isnull=True)
                    .annotate(day=TruncDate("at")).values("day")
                    .annotate(n=Count("id"), filtered=Count("id", filter=_filtered_q()))
                    .order_by("-day")[:30])
        for r in refusals:
            at = datetime.combine(r["day"], datetime.min.time()).replace(tzinfo=user_tz())
            rows.append(HistoryRow(at=at, kind="DICOM C-STORE", who="(any sender)", project="",
                                   state="Refused at receipt, no session", stored=0, filtered=r["filtered"],
                                   refused=r["n"] - r["filtered"], whole_day=True))

    rows.sort(key=lambda r: r.at, reverse=True)
    return rows[:SHOWN]


def _filtered_q():
    from django.db.models import Q

    from prearchive.models import IntakeRejection

    return Q(reason_code=IntakeRejection.Reason.FILTERED)


def user_tz():
    from django.utils import timezone

    return timezone.get_current_timezone()
