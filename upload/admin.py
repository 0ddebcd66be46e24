"""Admin: DICOM receivers (several AE title:port pairs) and the uploader's jobs (read-only)."""
from __future__ import annotations

from django.contrib import admin

from .forms import DicomReceiverForm
from .models import DicomReceiver, UploadJob


@admin.register(DicomReceiver)
class DicomReceiverAdmin(admin.ModelAdmin):
    form = DicomReceiverForm
    list_display = ("ae_title", "port", "enabled", "whitelist_enabled", "routing_expressions_enabled")
    list_filter = ("enabled",)
    fieldsets = [
        (None, {"fields": ["ae_title", "port", "enabled", "anonymization_enabled"]}),
        ("Calling AE whitelist", {"fields": ["whitelist_enabled", "whitelist"]}),
        ("Routing", {"fields": ["routing_expressions_enabled", "project_routing_expression",
                                "subject_routing_expression", "session_routing_expression"]}),
    ]


@admin.register(UploadJob)
class UploadJobAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "project", "file_name", "size", "status", "files_done", "files_total", "created")
    list_filter = ("status",)
    list_select_related = ("user", "project")
    raw_id_fields = ("user", "project")
    readonly_fields = [f.name for f in UploadJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
