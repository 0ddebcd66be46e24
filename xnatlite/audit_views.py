"""The audit trail page (/audit/): every recorded action in words, filtered by who, what, when and project,
in pages. Site admins see everything; others the events of the projects they can read."""
from __future__ import annotations

from datetime import datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from . import permissions
from .audit_text import ACTION_WORDS, action_words, audit_details, audit_sentence
from .models import AuditEvent

PAGE_SIZE = 50


def _day(value: str):
    try:
        return timezone.make_aware(datetime.combine(datetime.strptime(value, "%Y-%m-%d").date(), time.min))
    except ValueError:
        return None


@login_required
def audit_list(request: HttpRequest) -> HttpResponse:
    events = AuditEvent.objects.all()
    if not permissions.is_site_admin(request.user):
        ids = permissions.project_ids_for(request.user)
        events = events.filter(Q(project_id__in=ids) | Q(details__old_project__in=ids))
    f = {k: request.GET.get(k, "").strip() for k in ("who", "what", "project", "since", "until")}
    if f["who"]:
        events = events.filter(actor__iexact=f["who"])
    if f["what"]:
        events = events.filter(action=f["what"])
    if f["project"]:
        events = events.filter(Q(project_id=f["project"]) | Q(details__old_project=f["project"]))
    since, until = _day(f["since"]), _day(f["until"])
    if since:
        events = events.filter(at__gte=since)
    if until:
        events = events.filter(at__lt=until + timedelta(days=1))
    page = Paginator(events.order_by("-at", "-id"), PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [{"e": e, "text": audit_sentence(e), "details": audit_details(e)} for e in page]
    actions = sorted(set(ACTION_WORDS) | set(AuditEvent.objects.values_list("action", flat=True).distinct()[:200]))
    query = request.GET.copy()
    query.pop("page", None)
    return render(request, "audit/list.html", {
        "rows": rows, "page": page, "f": f, "query": query.urlencode(),
        "actions": [(a, action_words(a).replace("{", "").replace("}", "")) for a in actions],
        "projects": list(permissions.projects_for(request.user).values_list("id", flat=True)),
    })
