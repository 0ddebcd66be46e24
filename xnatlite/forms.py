"""Forms shared by the admin pages and the REST API, so both validate the same way."""
from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from .models import FilterMode, Project, SiteConfig

MSG_SUBJECT_SCHEME = "{value!r} is not a subject labeling scheme; use one of: {known} (or leave it empty)."
MSG_SESSION_SCHEME = ("{value!r} is not a session labeling scheme; use one of: {known}, or a "
                      "makeSessionLabel[...] expression (or leave it empty).")
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


# Help written for xnatlite where XNAT's text names pages xnatlite does not have ("Upload > Images", the
# Upload Assistant download). Kept in the form, so the model (and its migrations) keep XNAT's wording.
SITE_HELP = {
    "ui_hide_compressed_uploader_upload_option":
        'Hidden: the "Upload" link (the compressed uploader page) leaves the top bar. The DICOM-zip importer '
        "(/data/services/import) and \"Upload sessions\" stay available either way.",
    "ui_hide_xnat_upload_assistant_download":
        "xnatlite offers no Upload Assistant download; this setting is kept for XNAT clients that read it "
        "and changes nothing here.",
    "sitewide_pet_tracers":
        "The site-wide list of PET tracers, separated by whitespace; a project may replace it. When a PET "
        'session is uploaded ("Upload sessions") or archived, the tracer is chosen from this list.',
}
BYTE_FIELDS = ("upload_max_bytes",)


def _min_from_validators(field, model_field) -> None:
    """Show the true minimum (a PositiveIntegerField says 0 even when a validator asks for 1)."""
    from django.core.validators import MinValueValidator

    limits = [v.limit_value for v in model_field.validators if isinstance(v, MinValueValidator)]
    if limits and isinstance(field, forms.IntegerField):
        field.min_value = max(limits)
        field.widget.attrs["min"] = max(limits)


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
        from django.template.defaultfilters import filesizeformat

        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            field.help_text = SITE_HELP.get(name, field.help_text)
            _min_from_validators(field, SiteConfig._meta.get_field(name))
        for name in BYTE_FIELDS:
            value = self.initial.get(name) if name in self.fields else None
            if isinstance(value, int):
                self.fields[name].help_text += f" Now {value:,} bytes ({filesizeformat(value)})."
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

    def clean_dicom_file_name_template(self) -> str:
        from prearchive.services.filenames import template_check

        text = self.cleaned_data["dicom_file_name_template"]
        try:
            template_check(text)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        return text

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

    def clean_default_subject_labeling_scheme(self) -> str:
        from upload.client.labels import SUBJECT_SCHEMES

        value = (self.cleaned_data.get("default_subject_labeling_scheme") or "").strip()
        if value and value not in SUBJECT_SCHEMES:
            raise ValidationError(MSG_SUBJECT_SCHEME.format(value=value[:80], known=", ".join(SUBJECT_SCHEMES)))
        return value

    def clean_default_session_labeling_scheme(self) -> str:
        from upload.client.labels import MAKE_SESSION_LABEL, SESSION_SCHEMES, make_session_label_find

        value = (self.cleaned_data.get("default_session_labeling_scheme") or "").strip()
        if value and value not in SESSION_SCHEMES and not (MAKE_SESSION_LABEL in value
                                                           and make_session_label_find(value)):
            raise ValidationError(MSG_SESSION_SCHEME.format(value=value[:80], known=", ".join(SESSION_SCHEMES)))
        return value

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
