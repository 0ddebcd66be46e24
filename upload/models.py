"""Upload routes' own state: DICOM receivers defined in the admin, and compressed-uploader jobs."""
from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator, RegexValidator
from django.db import models

AE_TITLE_VALIDATOR = RegexValidator(
    r"^[ -~]{1,16}$", "An AE title is 1 to 16 printable ASCII characters (no backslash)."
)


class DicomReceiver(models.Model):
    """A DICOM C-STORE receiver (XNAT's DicomSCPInstance): one AE title on one port.

    ``run_dicom_scp`` serves every enabled receiver, plus the default one from settings (DICOM_AE_TITLE on
    DICOM_PORT) unless a receiver here uses that port. Changes are picked up without a restart."""

    ae_title = models.CharField("AE title", max_length=16, validators=[AE_TITLE_VALIDATOR])
    port = models.PositiveIntegerField(
        unique=True, validators=[MinValueValidator(1), MaxValueValidator(65535)],
        help_text="One AE title per port.",
    )
    enabled = models.BooleanField(default=True)
    whitelist_enabled = models.BooleanField(
        "Calling AE whitelist enabled", default=False,
        help_text="If on, only the calling AE titles listed below may connect.",
    )
    whitelist = models.TextField(
        "Calling AE whitelist", blank=True, default="",
        help_text="Calling AE titles allowed to send, one per line (or separated by commas).",
    )
    routing_expressions_enabled = models.BooleanField(default=False)
    project_routing_expression = models.CharField(
        max_length=255, blank=True, default="",
        help_text="Optional: a fixed project ID, or TAG:REGEX[:GROUP] (e.g. (0008,1030):Project:(\\w+)) that "
        "picks the project from each file's header.",
    )
    subject_routing_expression = models.CharField(max_length=255, blank=True, default="")
    session_routing_expression = models.CharField(max_length=255, blank=True, default="")
    anonymization_enabled = models.BooleanField(
        default=True, help_text="Apply the site-wide anonymization script to files received here."
    )

    class Meta:
        ordering = ["port"]
        verbose_name = "DICOM receiver"

    def __str__(self) -> str:
        return f"{self.ae_title}:{self.port}"

    @property
    def whitelist_titles(self) -> list[str]:
        return [t.strip() for t in self.whitelist.replace(",", "\n").splitlines() if t.strip()]


class UploadJob(models.Model):
    """One compressed-uploader upload: the archive on disk, then its server-side import progress."""

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        EXTRACTING = "EXTRACTING"
        IMPORTING = "IMPORTING"
        DONE = "DONE"
        FAILED = "FAILED"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="upload_jobs")
    project = models.ForeignKey("xnatlite.Project", on_delete=models.CASCADE, related_name="upload_jobs")
    params = models.JSONField(default=dict, blank=True, help_text="The import parameters (XNAT names).")
    file_name = models.CharField(max_length=255)
    archive_path = models.CharField(max_length=1024, blank=True, help_text="The uploaded archive on disk.")
    size = models.BigIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    files_total = models.PositiveIntegerField(default=0)
    files_done = models.PositiveIntegerField(default=0)
    summary = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"upload {self.id} ({self.status})"


from upload.client.models import *  # noqa: F401,F403  (issue 8: transfers)
