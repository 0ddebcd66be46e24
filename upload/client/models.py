"""The uploader client's transfers (issue 8): one browser upload, from the bytes arriving through inspection
and the user's confirmation to the import into the prearchive.

Registered with Django by one line at the end of ``upload/models.py``. Nothing here holds PHI: the
inspection keeps study dates, modalities, series descriptions and counts (shown to the uploading user
only), never patient names or IDs; the file index (which file belongs to which session and scan) lives in
the transfer's folder on disk, not in the database.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Transfer(models.Model):
    class Status(models.TextChoices):
        UPLOADING = "UPLOADING", "Uploading"
        INSPECTING = "INSPECTING", "Inspecting"
        AWAITING = "AWAITING", "Waiting for confirmation"
        IMPORTING = "IMPORTING", "Importing"
        DONE = "DONE", "Done"
        FAILED = "FAILED", "Failed"

    # States whose files may still sit on disk, waiting for the user.
    OPEN_STATUSES = (Status.UPLOADING, Status.INSPECTING, Status.AWAITING)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="client_transfers")
    project = models.ForeignKey("xnatlite.Project", on_delete=models.CASCADE, related_name="client_transfers")
    file_name = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0, help_text="Bytes announced by the browser.")
    bytes_received = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADING, db_index=True)
    work_dir = models.CharField(max_length=1024, blank=True, help_text="The transfer's folder on disk.")
    inspection = models.JSONField(default=dict, blank=True, help_text="Sessions found (no PHI).")
    choices = models.JSONField(default=dict, blank=True, help_text="What the user confirmed.")
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    date_attempts = models.PositiveSmallIntegerField(
        default=0, help_text="Confirmations refused for a visit date that does not match the data.")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)
    import_started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]
        indexes = [models.Index(fields=["status", "updated"], name="transfer_status_updated")]

    def __str__(self) -> str:
        return f"transfer {self.id} ({self.status})"
