"""Admin: the site settings page ("Session Upload, Import & Anonymization"), projects and the archive."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpResponseRedirect
from django.urls import reverse

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
    fieldsets = [(title, {"fields": [field for _, field in items]}) for title, items in GROUPS]
    save_on_top = True

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
        ("Anonymization", {"fields": ["anon_script_enabled", "anon_script"]}),
        ("Series import filter", {"fields": ["series_import_filter_enabled", "series_import_filter_mode",
                                             "series_import_filter"]}),
        ("PET", {"fields": ["pet_tracers_enabled", "pet_tracers", "pet_mr"]}),
        ("Uploader", {"fields": ["allow_create_subject", "require_date", "allow_bulk_upload",
                                 "default_subject_labeling_scheme", "default_session_labeling_scheme"]}),
    ]

    def get_readonly_fields(self, request, obj=None):
        return ["id"] if obj is not None else []


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


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor", "action", "project_id", "subject_label", "session_label"]
    list_filter = ["action", "project_id"]
    search_fields = ["session_label", "subject_label", "actor"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
