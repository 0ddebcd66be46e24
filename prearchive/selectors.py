"""Reads of the prearchive used by more than one caller (REST, admin, pages, jobs)."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from .models import UNASSIGNED, PrearchiveSession


def sessions_for_user(*, user, projects: list[str] | None = None) -> QuerySet[PrearchiveSession]:
    """Sessions the user may review: their projects (owner/member), plus Unassigned for site admins.
    ``projects`` narrows to those project IDs ("Unassigned" for the project-less sessions)."""
    from xnatlite.permissions import UPLOAD_ROLES, is_site_admin, project_ids_for

    allowed_q = Q() if is_site_admin(user) else Q(project_id__in=project_ids_for(user, UPLOAD_ROLES))
    qs = PrearchiveSession.objects.filter(allowed_q)
    if projects is not None:
        wanted = Q(pk__in=[])
        ids = [p for p in projects if p != UNASSIGNED]
        if ids:
            wanted |= Q(project_id__in=ids)
        if UNASSIGNED in projects:
            wanted |= Q(project__isnull=True)
        qs = qs.filter(wanted)
    return qs.order_by("-lastmod")


def session_by_uri_parts(*, project: str, timestamp: str, folder: str) -> PrearchiveSession | None:
    project_id = None if project == UNASSIGNED else project
    return (PrearchiveSession.objects.select_related("project")
            .filter(project_id=project_id, timestamp=timestamp, folder_name=folder).first())


def sessions_idle(*, older_than) -> QuerySet[PrearchiveSession]:
    return PrearchiveSession.objects.filter(status=PrearchiveSession.Status.RECEIVING, lastmod__lte=older_than)
