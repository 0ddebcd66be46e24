"""Forms shared by the admin pages and the REST API, so both validate the same way."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from .models import FilterMode, Project, SiteConfig

MSG_USER_MISSING = "The user '{name}' does not exist."
MSG_USER_INACTIVE = "The user '{name}' is disabled and cannot log in."
MSG_USER_NOT_ADMIN = "The user '{name}' is not a site administrator."
MSG_NO_AUTO_ARCHIVE = "Projects may not auto-archive on this site (projectAllowAutoArchive is off)."


def validate_script(text: str, project_id: str | None = None) -> None:
    """Raise ValidationError("LINE:COL: message") if the DicomEdit script does not parse, or uses a lookup
    table that the site (``project_id`` None) or that project does not have."""
    from anonymization.services import script_validate

    script_validate(text=text, project_id=project_id)


def validate_series_filter(*, mode: str, text: str) -> None:
    from anonymization.filters import FilterError, filter_parse

    try:
        filter_parse(mode=mode, text=text)
    except FilterError as exc:
        raise ValidationError(str(exc)) from None


class SiteConfigForm(forms.ModelForm):
    class Meta:
        model = SiteConfig
        fields = "__all__"
        widgets = {
            "sitewide_anonymization_script": forms.Textarea(attrs={"rows": 14, "cols": 100, "class": "vLargeTextField monospace"}),
            "sitewide_series_import_filter": forms.Textarea(attrs={"rows": 8, "cols": 100, "class": "vLargeTextField monospace"}),
            "sitewide_pet_tracers": forms.Textarea(attrs={"rows": 4, "cols": 60}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "sitewide_pet_mr" in self.fields:
            self.fields["sitewide_pet_mr"].choices = [("", "Default: create as PET/MR session")] + [
                c for c in self.fields["sitewide_pet_mr"].choices if c[0]
            ]

    def clean_received_file_user(self) -> str:
        name = self.cleaned_data["received_file_user"]
        user = get_user_model().objects.filter(username=name).first()
        if user is None:
            raise ValidationError(MSG_USER_MISSING.format(name=name))
        if not user.is_active:
            raise ValidationError(MSG_USER_INACTIVE.format(name=name))
        if not user.is_superuser:
            raise ValidationError(MSG_USER_NOT_ADMIN.format(name=name))
        return name

    def clean_sitewide_anonymization_script(self) -> str:
        text = self.cleaned_data["sitewide_anonymization_script"]
        validate_script(text)
        return text

    def clean(self):
        data = super().clean()
        mode = data.get("sitewide_series_import_filter_mode")
        text = data.get("sitewide_series_import_filter")
        if mode is not None and text is not None:
            try:
                validate_series_filter(mode=mode, text=text)
            except ValidationError as exc:
                self.add_error("sitewide_series_import_filter", exc)
        if data.get("default_project_auto_archive_setting") in (4, 5) and data.get("project_allow_auto_archive") is False:
            self.add_error("default_project_auto_archive_setting", "Auto-archive is not allowed on this site.")
        return data


class ProjectForm(forms.ModelForm):
    class Meta:
        model = Project
        fields = "__all__"
        widgets = {
            "anon_script": forms.Textarea(attrs={"rows": 14, "cols": 100, "class": "vLargeTextField monospace"}),
            "series_import_filter": forms.Textarea(attrs={"rows": 8, "cols": 100, "class": "vLargeTextField monospace"}),
        }

    def clean_anon_script(self) -> str:
        text = self.cleaned_data["anon_script"]
        validate_script(text, None if self.instance._state.adding else self.instance.pk)
        return text

    def clean_prearchive_code(self) -> int:
        """projectAllowAutoArchive off: a new project, or a changed code, may not auto-archive (4, 5)."""
        from .selectors import site_config_get

        code = self.cleaned_data["prearchive_code"]
        adding = self.instance._state.adding
        if code in (4, 5) and (adding or "prearchive_code" in self.changed_data) \
                and not site_config_get().project_allow_auto_archive:
            raise ValidationError(MSG_NO_AUTO_ARCHIVE)
        return code

    def clean(self):
        data = super().clean()
        mode = data.get("series_import_filter_mode", FilterMode.BLACKLIST)
        text = data.get("series_import_filter")
        if text is not None:
            try:
                validate_series_filter(mode=mode, text=text)
            except ValidationError as exc:
                self.add_error("series_import_filter", exc)
        return data


# The project settings an owner edits on the project page (the ID, members and codes have their own services).
PROJECT_SETTINGS_FIELDS = [
    "name", "description", "series_import_filter_enabled", "series_import_filter_mode", "series_import_filter",
    "pet_tracers_enabled", "pet_tracers", "pet_mr", "allow_create_subject", "require_date", "allow_bulk_upload",
    "default_subject_labeling_scheme", "default_session_labeling_scheme",
]


class ProjectSettingsForm(ProjectForm):
    """The admin's project form, limited to the settings: the same field validation and filter check."""

    class Meta(ProjectForm.Meta):
        fields = PROJECT_SETTINGS_FIELDS
