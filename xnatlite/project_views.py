"""The project pages for owners and site admins, outside the Django admin (XNAT's project "Manage" tab):
the list of one's projects with project creation (where the site allows it), and one page per project with
its settings, import codes, anonymization script (and its preview), and members by user name or e-mail.

Views translate the form posts and call the same services as the admin and REST (xnatlite.services,
xnatlite.archive.services); validation lives there and in the shared forms."""
from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from . import permissions
from .forms import ProjectSettingsForm
from .models import ID_VALIDATOR, PrearchiveCode, Project, ProjectMember
from .selectors import site_config_get
from .services import (project_create, project_member_remove, project_member_set,
                       project_settings_update)
from .archive.services import (project_anon_script_set, project_prearchive_code_set,
                               project_quarantine_code_set)


class ProjectCreateForm(forms.Form):
    project_id = forms.CharField(label="Project ID", max_length=64, validators=[ID_VALIDATOR],
                                 help_text="Letters, digits, underscores or hyphens; cannot be changed later.")
    name = forms.CharField(label="Project name", max_length=255, required=False)
    description = forms.CharField(label="Description", widget=forms.Textarea(attrs={"rows": 3}), required=False)


class CodesForm(forms.Form):
    prearchive_code = forms.TypedChoiceField(label="Prearchive", coerce=int, choices=PrearchiveCode.choices)
    quarantine_code = forms.TypedChoiceField(label="Quarantine", coerce=int,
                                             choices=[(0, "Off: archived sessions are available at once"),
                                                      (1, "On: archived sessions wait in quarantine")])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not site_config_get().ui_allow_quarantine:  # uiAllowQuarantine off: no quarantine setting shown
            del self.fields["quarantine_code"]


class ScriptForm(forms.Form):
    anon_script_enabled = forms.BooleanField(label="Apply this script when sessions are archived", required=False)
    anon_script = forms.CharField(label="Anonymization script (DicomEdit)", required=False, strip=False,
                                  widget=forms.Textarea(attrs={"rows": 12, "spellcheck": "false"}))


class MemberForm(forms.Form):
    who = forms.CharField(label="User name or e-mail", max_length=254)
    role = forms.ChoiceField(label="Role", choices=ProjectMember.Role.choices, initial=ProjectMember.Role.MEMBER)


def _project_for_manager(request: HttpRequest, project_id: str) -> Project:
    """The project, for its owners and site admins. Outsiders get 404 (as for a project that does not
    exist), members and collaborators 403."""
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(request.user, project_id):
        raise Http404("No such project.")
    if not permissions.can_manage_project(request.user, project_id):
        raise PermissionDenied("Only the project's owners and site administrators manage a project.")
    return project


def _errors(exc: ValidationError) -> list[str]:
    if hasattr(exc, "error_dict"):
        return [f"{field.replace('_', ' ')}: {m}" if field != "__all__" else m
                for field, msgs in exc.message_dict.items() for m in msgs]
    return list(exc.messages)


@login_required
def project_list(request: HttpRequest) -> HttpResponse:
    roles = dict(ProjectMember.objects.filter(user=request.user).values_list("project_id", "role"))
    rows = [{"p": p, "role": "site admin" if permissions.is_site_admin(request.user) and p.pk not in roles
             else ProjectMember.Role(roles[p.pk]).label,
             "manage": permissions.can_manage_project(request.user, p.pk)}
            for p in permissions.projects_for(request.user)]
    can_create = permissions.can_create_project(request.user)
    form = ProjectCreateForm(request.POST or None) if can_create else None
    if request.method == "POST":
        if not can_create:
            raise PermissionDenied("Only site administrators may create projects on this site.")
        if form.is_valid():
            data = form.cleaned_data
            try:
                project = project_create(project_id=data["project_id"], name=data["name"],
                                         description=data["description"], owner=request.user,
                                         actor=request.user.get_username())
            except ValidationError as exc:
                for message in _errors(exc):
                    form.add_error(None, message)
            else:
                messages.success(request, f"Project {project.pk} created; you are its owner.")
                return redirect("project-manage", project_id=project.pk)
    return render(request, "projects/list.html", {"rows": rows, "form": form, "can_create": can_create})


def _settings_data(request: HttpRequest) -> dict:
    """The settings section's post as the service takes it (an unticked box is False, not absent)."""
    form = ProjectSettingsForm()
    return {name: (name in request.POST) if isinstance(field, forms.BooleanField) else request.POST.get(name, "")
            for name, field in form.fields.items()}


@login_required
def project_manage(request: HttpRequest, project_id: str) -> HttpResponse:
    project = _project_for_manager(request, project_id)
    actor = request.user.get_username()
    section = request.POST.get("section", "")
    settings_form = ProjectSettingsForm(instance=project)
    codes_form = CodesForm(initial={"prearchive_code": project.prearchive_code,
                                    "quarantine_code": project.quarantine_code})
    script_form = ScriptForm(initial={"anon_script": project.anon_script,
                                      "anon_script_enabled": project.anon_script_enabled})
    member_form = MemberForm()
    if request.method == "POST":
        try:
            if section == "settings":
                settings_form = ProjectSettingsForm(_settings_data(request), instance=project)
                project_settings_update(project=project, data=_settings_data(request), actor=actor)
                done = "Settings saved."
            elif section == "codes":
                codes_form = CodesForm(request.POST)
                if not codes_form.is_valid():
                    raise ValidationError("Choose a prearchive and a quarantine setting.")
                data = codes_form.cleaned_data
                project_prearchive_code_set(project=project, value=str(data["prearchive_code"]), actor=actor)
                if "quarantine_code" in data:
                    project_quarantine_code_set(project=project, value=str(data["quarantine_code"]), actor=actor)
                done = "Import codes saved."
            elif section == "script":
                script_form = ScriptForm(request.POST)
                script_form.is_valid()
                data = script_form.cleaned_data
                project_anon_script_set(project=project, actor=actor, text=data.get("anon_script", ""),
                                        enabled=bool(data.get("anon_script_enabled")))
                done = "Anonymization script saved."
            elif section == "member_add":
                member_form = MemberForm(request.POST)
                if not member_form.is_valid():
                    raise ValidationError("Give a user name or e-mail and a role.")
                member = project_member_set(project=project, who=member_form.cleaned_data["who"],
                                            role=member_form.cleaned_data["role"], actor=actor)
                done = f"{member.user.get_username()} is now {member.get_role_display().lower()} of {project.pk}."
            elif section == "member_role":
                target = ProjectMember.objects.select_related("user").filter(
                    project=project, user_id=request.POST.get("user", "0") or 0).first()
                if target is None:
                    raise ValidationError("That user is not a member of this project.")
                project_member_set(project=project, who=target.user.get_username(),
                                   role=request.POST.get("role", ""), actor=actor)
                done = f"Role of {target.user.get_username()} changed."
            elif section == "member_remove":
                user_id = request.POST.get("user", "")
                if not user_id.isdigit():
                    raise ValidationError("That user is not a member of this project.")
                project_member_remove(project=project, user_id=int(user_id), actor=actor)
                done = "Member removed."
            else:
                raise ValidationError("Unknown form.")
        except ValidationError as exc:
            for message in _errors(exc):
                messages.error(request, message)
            if section == "settings":
                settings_form.is_valid()  # shows the messages beside the fields
        else:
            messages.success(request, done)
            return redirect(reverse("project-manage", args=[project.pk]) + f"#{section.split('_')[0]}")
        project.refresh_from_db()
    members = ProjectMember.objects.filter(project=project).select_related("user").order_by("user__username")
    return render(request, "projects/manage.html", {
        "project": project, "settings_form": settings_form, "codes_form": codes_form, "script_form": script_form,
        "member_form": member_form, "members": members, "roles": ProjectMember.Role.choices,
        "auto_archive_allowed": site_config_get().project_allow_auto_archive, "section": section,
    })


@login_required
def project_preview(request: HttpRequest, project_id: str) -> HttpResponse:
    """The admin's script preview, for the project's owners: the saved script (editable here, not saved) on
    an uploaded DICOM file or one of the project's prearchive files."""
    from anonymization.admin_preview import PreviewForm, script_preview_run

    project = _project_for_manager(request, project_id)
    form = PreviewForm(request.POST or None, request.FILES or None, project_ids=[project.pk],
                       initial={"script": project.anon_script, "project": project.pk})
    result = error = None
    if request.method == "POST" and form.is_valid():
        result, error = script_preview_run(form)
    return render(request, "projects/preview.html", {"project": project, "form": form, "result": result,
                                                     "error": error})
