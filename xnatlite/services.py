"""Writes on the core models: site settings, projects, the audit log and the beat schedule."""
from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.forms.models import model_to_dict
from django.utils import timezone

from .forms import ProjectSettingsForm, SiteConfigForm
from .models import AuditEvent, Project, ProjectMember, SchedulerHeartbeat, SiteConfig
from .selectors import site_config_get
from .site_settings import FIELD_TO_PROPERTY, PROPERTIES, canonical_property

IDLE_SWEEP_TASK = "prearchive.sessions_idle_sweep"
IDLE_SWEEP_ENTRY = "Session idle check"

MSG_UNKNOWN_PROPERTY = "No site configuration property named {name}"
MSG_PROJECT_EXISTS = "A project with the ID {id} already exists."
MSG_PROJECT_CREATE_ADMINS = "Only site administrators may create projects on this site."
MSG_MEMBER_UNKNOWN = "No user has the user name or e-mail address '{who}'."
MSG_MEMBER_AMBIGUOUS = "Several users have the e-mail address '{who}': give the user name."
MSG_MEMBER_INACTIVE = "The user '{who}' is disabled."
MSG_MEMBER_ROLE = "The role must be one of: owner, member, collaborator."
MSG_LAST_OWNER = "A project keeps at least one owner: make someone else owner first."


def audit_record(*, actor: str, action: str, project_id: str = "", subject_label: str = "",
                 session_label: str = "", **details: Any) -> AuditEvent:
    """Record who did what. Never pass PHI: labels, UIDs and counts only."""
    return AuditEvent.objects.create(
        actor=actor or "", action=action, project_id=project_id or "", subject_label=subject_label or "",
        session_label=session_label or "", details=details,
    )


def _coerce(value: Any) -> Any:
    """Values arrive as JSON scalars or form strings; the form widgets want strings or bools."""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    return value


# Fields whose values are checked together: a change of one makes the others' errors this write's errors.
SITE_CONFIG_LINKED: tuple[frozenset[str], ...] = (
    frozenset({"enable_sitewide_anonymization_script", "sitewide_anonymization_script"}),
    frozenset({"enable_sitewide_series_import_filter", "sitewide_series_import_filter_mode",
               "sitewide_series_import_filter"}),
    frozenset({"default_project_auto_archive_setting", "project_allow_auto_archive"}),
)


def _site_config_concerned(changed: set[str]) -> set[str]:
    """The fields a write of ``changed`` answers for: those, and those checked together with them."""
    concerned = set(changed)
    for linked in SITE_CONFIG_LINKED:
        if linked & changed:
            concerned |= linked
    return concerned


def site_config_update(*, data: dict[str, Any], actor: str) -> SiteConfig:
    """Change site settings given by XNAT property name. All-or-nothing: any bad value raises
    ValidationError({property: [messages]}) and nothing changes. Only what the write changes is validated,
    with what it is checked together with (the script and its switch, the filter, its mode and its switch,
    the default auto-archive code and whether auto-archive is allowed); a stored value the write does not
    touch never refuses it, and only the written fields are saved."""
    unknown = [name for name in data if canonical_property(name) is None]
    if unknown:
        raise ValidationError({name: [MSG_UNKNOWN_PROPERTY.format(name=name)] for name in unknown})
    with transaction.atomic():
        config = SiteConfig.objects.select_for_update().get(pk=site_config_get().pk)
        current = model_to_dict(config)
        changes = {PROPERTIES[canonical_property(k)]: _coerce(v) for k, v in data.items()}
        if "sitewide_pet_mr" in changes:  # XNAT strips whitespace from this value
            changes["sitewide_pet_mr"] = "".join(str(changes["sitewide_pet_mr"] or "").split())
        form = SiteConfigForm(data={**current, **changes}, instance=config)
        form.is_valid()
        concerned = _site_config_concerned(set(changes))
        errors = {f: msgs for f, msgs in form.errors.items() if f in concerned or f not in current}
        if errors:
            raise ValidationError(
                {FIELD_TO_PROPERTY.get(f, f): [str(m) for m in msgs] for f, msgs in errors.items()}
            )
        changed = [f for f in form.changed_data if f in changes]
        for name in changed:
            setattr(config, name, form.cleaned_data[name])
        if changed:
            config.save(update_fields=changed)
            audit_record(actor=actor, action="site_config_update",
                         properties=sorted(FIELD_TO_PROPERTY[f] for f in changed))
        transaction.on_commit(lambda: idle_schedule_sync(config=config))
    return config


def site_config_saved(*, config: SiteConfig, actor: str, changed: list[str]) -> None:
    """After the admin form saved the singleton: audit and keep the beat schedule in step."""
    if changed:
        audit_record(actor=actor, action="site_config_update",
                     properties=sorted(FIELD_TO_PROPERTY.get(f, f) for f in changed))
    transaction.on_commit(lambda: idle_schedule_sync(config=config))


def idle_schedule_sync(*, config: SiteConfig | None = None) -> None:
    """Keep the beat entry of the idle checker at the Session Idle Check Interval. The database scheduler
    notices the change on its next tick (at most a second later), so no restart is needed."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    config = config or site_config_get()
    ms = max(1, int(config.session_xml_rebuilder_repeat))
    if ms % 1000 == 0:
        every, period = ms // 1000, IntervalSchedule.SECONDS
    else:
        every, period = ms * 1000, IntervalSchedule.MICROSECONDS
    schedule, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
    task = PeriodicTask.objects.filter(name=IDLE_SWEEP_ENTRY).first()
    if task is None:
        PeriodicTask.objects.create(name=IDLE_SWEEP_ENTRY, task=IDLE_SWEEP_TASK, interval=schedule)
    elif task.interval_id != schedule.pk or task.task != IDLE_SWEEP_TASK or not task.enabled:
        task.interval = schedule
        task.task = IDLE_SWEEP_TASK
        task.enabled = True
        task.save()


def heartbeat_record(*, name: str) -> None:
    now = timezone.now()
    updated = SchedulerHeartbeat.objects.filter(name=name).update(
        last_run=now, runs=F("runs") + 1
    )
    if not updated:
        try:
            SchedulerHeartbeat.objects.create(name=name, last_run=now, runs=1)
        except IntegrityError:
            SchedulerHeartbeat.objects.filter(name=name).update(last_run=now, runs=F("runs") + 1)


def project_create(*, project_id: str, name: str = "", description: str = "", owner=None,
                   actor: str = "") -> Project:
    """Create a project with the site's default prearchive code; the creator becomes its owner. When the
    site restricts project creation to admins (uiAllowNonAdminProjectCreation off), an owner who is not a
    site admin is refused with PermissionDenied."""
    from .permissions import can_create_project

    if owner is not None and not can_create_project(owner):
        raise PermissionDenied(MSG_PROJECT_CREATE_ADMINS)
    config = site_config_get()
    project = Project(id=project_id, name=name or project_id, description=description,
                      prearchive_code=config.default_project_auto_archive_setting)
    project.full_clean(validate_unique=False)
    with transaction.atomic():
        if Project.objects.select_for_update().filter(pk=project_id).exists():
            raise ValidationError({"id": [MSG_PROJECT_EXISTS.format(id=project_id)]}, code="exists")
        project.save(force_insert=True)
        if owner is not None:
            ProjectMember.objects.create(project=project, user=owner, role=ProjectMember.Role.OWNER)
        audit_record(actor=actor, action="project_create", project_id=project_id)
    return project


def project_settings_update(*, project: Project, data: dict[str, Any], actor: str) -> Project:
    """Change the project's settings (name, description, series filter, PET, uploader settings) with the
    admin's validation. All-or-nothing: a bad value raises ValidationError({field: [messages]})."""
    with transaction.atomic():
        project = Project.objects.select_for_update().get(pk=project.pk)
        current = model_to_dict(project, fields=ProjectSettingsForm.Meta.fields)
        form = ProjectSettingsForm(data={**current, **data}, instance=project)
        if not form.is_valid():
            raise ValidationError({f: [str(m) for m in msgs] for f, msgs in form.errors.items()})
        project = form.save()
        if form.changed_data:
            audit_record(actor=actor, action="project_settings_update", project_id=project.id,
                         fields=sorted(form.changed_data))
    return project


def user_find(*, who: str):
    """The active user whose user name (exactly) or e-mail address (any case) is ``who``."""
    who = (who or "").strip()
    users = get_user_model().objects
    user = users.filter(username=who).first() if who else None
    if user is None and "@" in who:
        matches = list(users.filter(email__iexact=who)[:2])
        if len(matches) > 1:
            raise ValidationError(MSG_MEMBER_AMBIGUOUS.format(who=who), code="ambiguous")
        user = matches[0] if matches else None
    if user is None:
        raise ValidationError(MSG_MEMBER_UNKNOWN.format(who=who), code="unknown")
    if not user.is_active:
        raise ValidationError(MSG_MEMBER_INACTIVE.format(who=who), code="inactive")
    return user


def _owners_left(project: Project, without_user_id: int) -> int:
    return (ProjectMember.objects.filter(project=project, role=ProjectMember.Role.OWNER)
            .exclude(user_id=without_user_id).count())


def project_member_set(*, project: Project, who: str, role: str, actor: str) -> ProjectMember:
    """Give the user named by user name or e-mail ``who`` the ``role`` in the project (adding or changing
    their membership). The last owner cannot be demoted."""
    if role not in ProjectMember.Role.values:
        raise ValidationError(MSG_MEMBER_ROLE, code="role")
    user = user_find(who=who)
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        member = ProjectMember.objects.filter(project=project, user=user).first()
        if member is not None and member.role == ProjectMember.Role.OWNER and role != member.role \
                and not _owners_left(project, user.pk):
            raise ValidationError(MSG_LAST_OWNER, code="last_owner")
        if member is None:
            member = ProjectMember.objects.create(project=project, user=user, role=role)
        elif member.role != role:
            ProjectMember.objects.filter(pk=member.pk).update(role=role)
            member.role = role
        audit_record(actor=actor, action="project_member_set", project_id=project.id,
                     user=user.get_username(), role=role)
    return member


def project_member_remove(*, project: Project, user_id: int, actor: str) -> None:
    """Take a user out of the project; the last owner stays."""
    with transaction.atomic():
        Project.objects.select_for_update().filter(pk=project.pk).first()
        member = ProjectMember.objects.select_related("user").filter(project=project, user_id=user_id).first()
        if member is None:
            return
        if member.role == ProjectMember.Role.OWNER and not _owners_left(project, user_id):
            raise ValidationError(MSG_LAST_OWNER, code="last_owner")
        member.delete()
        audit_record(actor=actor, action="project_member_remove", project_id=project.id,
                     user=member.user.get_username())
