"""Admin: the site settings page ("Session Upload, Import & Anonymization"), projects and the archive."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from .forms import ProjectForm, SiteConfigForm
from .models import AuditEvent, ImageSession, Project, ProjectAlias, ProjectMember, Scan, SiteConfig, Subject
from .selectors import site_config_get
from .services import site_config_saved
from .site_settings import GROUPS

admin.site.site_header = "xnatlite administration"
admin.site.site_title = "xnatlite"
admin.site.index_title = "Site administration"


@admin.register(SiteConfig)
class SiteConfigAdmin(admin.ModelAdmin):
    """A singleton: the list view goes straight to the one settings page."""

    form = SiteConfigForm
    fieldsets = [
        (title, {"fields": [field for _, field in items]
                 + (["anonymization_preview"] if title == "Site-wide Anonymization Script" else [])})
        for title, items in GROUPS
    ]
    readonly_fields = ["anonymization_preview"]
    save_on_top = True

    @admin.display(description="Preview")
    def anonymization_preview(self, obj) -> str:
        url = reverse("admin:xnatlite_siteconfig_preview", args=[obj.pk or 1])
        return format_html('<a href="{}" id="preview-link">Try the script on a DICOM file</a>', url)

    def get_urls(self):
        return [path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="xnatlite_siteconfig_preview")] + super().get_urls()

    def preview_view(self, request, pk):
        from anonymization.admin_preview import script_preview_view

        config = site_config_get()
        return script_preview_view(
            request, admin_site=self.admin_site, script_text=config.sitewide_anonymization_script,
            title="Preview: site-wide anonymization script",
            back_url=reverse("admin:xnatlite_siteconfig_change", args=[config.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        config = site_config_get()
        return HttpResponseRedirect(reverse("admin:xnatlite_siteconfig_change", args=[config.pk]))

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        site_config_saved(config=obj, actor=request.user.get_username(), changed=list(form.changed_data))


class ProjectMemberInline(admin.TabularInline):
    model = ProjectMember
    extra = 1
    raw_id_fields = ["user"]


class ProjectAliasInline(admin.TabularInline):
    model = ProjectAlias
    extra = 0


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    form = ProjectForm
    list_display = ["id", "name", "prearchive_code", "quarantine_code", "anon_script_enabled",
                    "series_import_filter_enabled"]
    search_fields = ["id", "name", "aliases__alias"]
    inlines = [ProjectAliasInline, ProjectMemberInline]
    fieldsets = [
        (None, {"fields": ["id", "name", "description"]}),
        ("Import", {"fields": ["prearchive_code", "quarantine_code"]}),
        ("Anonymization", {"fields": ["anon_script_enabled", "anon_script", "anonymization_preview"]}),
        ("Series import filter", {"fields": ["series_import_filter_enabled", "series_import_filter_mode",
                                             "series_import_filter"]}),
        ("PET", {"fields": ["pet_tracers_enabled", "pet_tracers", "pet_mr"]}),
        ("Uploader", {"fields": ["allow_create_subject", "require_date", "allow_bulk_upload",
                                 "default_subject_labeling_scheme", "default_session_labeling_scheme"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["id", "anonymization_preview"] if obj is not None else ["anonymization_preview"]

    def get_fieldsets(self, request, obj=None):
        """uiAllowQuarantine off: the quarantine setting is not shown (nor taken from the form)."""
        fieldsets = super().get_fieldsets(request, obj)
        if site_config_get().ui_allow_quarantine:
            return fieldsets
        return [(title, {**opts, "fields": [f for f in opts["fields"] if f != "quarantine_code"]})
                for title, opts in fieldsets]

    def get_changeform_initial_data(self, request):
        """A new project starts with the site's defaultProjectAutoArchiveSetting, as REST-created ones do."""
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("prearchive_code", site_config_get().default_project_auto_archive_setting)
        return initial

    @admin.display(description="Preview")
    def anonymization_preview(self, obj) -> str:
        if obj is None or not obj.pk:
            return "Save the project first."
        url = reverse("admin:xnatlite_project_preview", args=[obj.pk])
        return format_html('<a href="{}" id="preview-link">Try the script on a DICOM file</a>', url)

    def get_urls(self):
        return [path("<str:pk>/preview/", self.admin_site.admin_view(self.preview_view),
                     name="xnatlite_project_preview")] + super().get_urls()

    def preview_view(self, request, pk):
        from django.shortcuts import get_object_or_404

        from anonymization.admin_preview import script_preview_view

        project = get_object_or_404(Project, pk=pk)
        if not self.has_change_permission(request, project):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        return script_preview_view(
            request, admin_site=self.admin_site, script_text=project.anon_script,
            title=f"Preview: anonymization script of project {project.pk}",
            back_url=reverse("admin:xnatlite_project_change", args=[project.pk]))


@admin.register(Subject)
class SubjectAdmin(admin.ModelAdmin):
    list_display = ["label", "project", "created"]
    list_filter = ["project"]
    search_fields = ["label"]
    list_select_related = ["project"]


class ScanInline(admin.TabularInline):
    model = Scan
    extra = 0
    fields = ["scan_id", "series_description", "modality", "scan_type", "frames", "file_count", "size"]
    readonly_fields = fields
    can_delete = False


@admin.register(ImageSession)
class ImageSessionAdmin(admin.ModelAdmin):
    list_display = ["label", "project", "subject", "modality", "scan_date", "archived_at", "quarantined"]
    list_filter = ["project", "modality", "quarantined"]
    search_fields = ["label", "accession_id"]
    list_select_related = ["project", "subject"]
    raw_id_fields = ["subject"]
    inlines = [ScanInline]


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows that only the system writes (audit, intake records): listed and shown, never edited here."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor", "action", "project_id", "subject_label", "session_label"]
    list_filter = ["action", "project_id"]
    search_fields = ["session_label", "subject_label", "actor"]
