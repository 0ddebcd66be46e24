"""Read-only admin listings of the prearchive (the review pages are their own app/issue)."""
from __future__ import annotations

from django.contrib import admin

from xnatlite.admin import ReadOnlyAdmin

from .models import IntakeRejection, PrearchiveFile, PrearchiveSession


@admin.register(PrearchiveSession)
class PrearchiveSessionAdmin(ReadOnlyAdmin):
    list_display = ("uri_display", "status", "subject", "name", "modality", "file_count", "filtered_count",
                    "rejected_count", "lastmod")
    list_filter = ("status", "project")
    search_fields = ("name", "subject", "tag")
    list_select_related = ("project",)
    exclude = ("document",)
    readonly_fields = ("error_message",)

    @admin.display(description="prearchive URI")
    def uri_display(self, obj: PrearchiveSession) -> str:
        return obj.uri


@admin.register(PrearchiveFile)
class PrearchiveFileAdmin(ReadOnlyAdmin):
    list_display = ("relative_path", "session", "scan_id", "modality", "size", "received")
    raw_id_fields = ("session",)
    list_select_related = ("session",)
    show_full_result_count = False


@admin.register(IntakeRejection)
class IntakeRejectionAdmin(ReadOnlyAdmin):
    list_display = ("at", "reason_code", "reason", "source", "study_instance_uid", "session")
    list_filter = ("reason_code", "source")
    raw_id_fields = ("session",)
    show_full_result_count = False
