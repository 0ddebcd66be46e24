"""The one place that decides who may do what (XNAT's roles).

site admin: everything. Project owner: manage the project and its settings, plus everything a member does.
Member: upload, review the prearchive, archive. Collaborator: read archived data only.
"""
from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from .models import Project, ProjectMember

Role = ProjectMember.Role
UPLOAD_ROLES = (Role.OWNER, Role.MEMBER)
READ_ROLES = (Role.OWNER, Role.MEMBER, Role.COLLABORATOR)


def is_site_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_superuser)


def project_role(user, project_id: str | None) -> str | None:
    if not user.is_authenticated or project_id is None:
        return None
    return (
        ProjectMember.objects.filter(user=user, project_id=project_id).values_list("role", flat=True).first()
    )


def can_read_project(user, project_id: str) -> bool:
    return is_site_admin(user) or project_role(user, project_id) in READ_ROLES


def project_visible(user, project_id: str) -> bool:
    """Whether the project exists for this user: it exists and they may read it. Refusals to a user who
    cannot see the project answer exactly as for a project (or anything in it) that does not exist, so an
    outsider learns nothing; members who lack a right get 403."""
    return Project.objects.filter(pk=project_id).exists() and can_read_project(user, project_id)


def can_upload(user, project_id: str) -> bool:
    return is_site_admin(user) or project_role(user, project_id) in UPLOAD_ROLES


def may_prevent_anon(user, project_id: str | None) -> bool:
    """Whether an upload by ``user`` into ``project_id`` may skip the site and project scripts
    (``prevent_anon``): the site setting preventAnonAllowed says who (default: site admins and the
    project's owners). Without a project (files routed by their headers) only site admins may."""
    if is_site_admin(user):
        return True
    if project_id is None:
        return False
    from .selectors import site_config_get

    allowed = site_config_get().prevent_anon_allowed
    role = project_role(user, project_id)
    if allowed == "owners":
        return role == Role.OWNER
    if allowed == "uploaders":
        return role in UPLOAD_ROLES
    return False


def can_review_prearchive(user, project_id: str | None) -> bool:
    """Project owners and members review their projects' prearchive; only site admins see Unassigned."""
    if project_id is None:
        return is_site_admin(user)
    return can_upload(user, project_id)


def can_manage_project(user, project_id: str) -> bool:
    return is_site_admin(user) or project_role(user, project_id) == Role.OWNER


def can_create_project(user) -> bool:
    """Site admins always; other logged-in users when the site allows it (uiAllowNonAdminProjectCreation)."""
    if is_site_admin(user):
        return True
    if not (user.is_authenticated and user.is_active):
        return False
    from .selectors import site_config_get

    return site_config_get().ui_allow_non_admin_project_creation


def can_see_quarantined(user, project_id: str) -> bool:
    return can_manage_project(user, project_id)


def projects_for(user, roles=READ_ROLES) -> QuerySet[Project]:
    if is_site_admin(user):
        return Project.objects.all()
    if not user.is_authenticated:
        return Project.objects.none()
    return Project.objects.filter(memberships__user=user, memberships__role__in=roles).distinct()


def project_ids_for(user, roles=READ_ROLES) -> list[str]:
    return list(projects_for(user, roles).values_list("id", flat=True))
