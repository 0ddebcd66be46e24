"""The prearchive: sessions waiting for review, their files, and intake rejections.

Status rules (reference/xnat.md §3 and §7). Every transition is a conditional UPDATE
(``filter(pk=..., status=expected).update(...)``) so that two workers never both own a session.
A file that arrives for an existing session:
- RECEIVING / RECEIVING_INTERRUPT: appended, ``lastmod`` bumped;
- an in-flight operation (BUILDING, SEPARATING, ARCHIVING, MOVING, DELETING and their QUEUED_ variants
  except QUEUED_BUILDING): the session becomes RECEIVING_INTERRUPT. The operation's final conditional
  update (``status=<its own status>``) then fails, and the operation must leave the session RECEIVING with
  every file in place (the builder does; the archive/move/delete jobs must do the same);
- any resting status (READY, CONFLICT, ERROR) and QUEUED_BUILDING: back to RECEIVING (XNAT: every status is
  interruptable), so the idle checker builds it again with all files.
"""
from __future__ import annotations

from django.db import models

from xnatlite.models import Project

UNASSIGNED = "Unassigned"


class PrearchiveSession(models.Model):
    class Status(models.TextChoices):
        RECEIVING = "RECEIVING"
        RECEIVING_INTERRUPT = "RECEIVING_INTERRUPT"
        QUEUED_BUILDING = "QUEUED_BUILDING"
        BUILDING = "BUILDING"
        READY = "READY"
        CONFLICT = "CONFLICT"
        ERROR = "ERROR"
        QUEUED_ARCHIVING = "QUEUED_ARCHIVING"
        ARCHIVING = "ARCHIVING"
        QUEUED_MOVING = "QUEUED_MOVING"
        MOVING = "MOVING"
        QUEUED_DELETING = "QUEUED_DELETING"
        DELETING = "DELETING"
        QUEUED_SEPARATING = "QUEUED_SEPARATING"
        SEPARATING = "SEPARATING"

    # Statuses in which new files simply append.
    RECEIVING_STATUSES = (Status.RECEIVING, Status.RECEIVING_INTERRUPT)
    # Statuses of a running (or queued) operation: a late file interrupts it.
    INTERRUPTIBLE_OPERATIONS = (
        Status.BUILDING, Status.SEPARATING, Status.QUEUED_SEPARATING, Status.QUEUED_ARCHIVING,
        Status.ARCHIVING, Status.QUEUED_MOVING, Status.MOVING, Status.QUEUED_DELETING, Status.DELETING,
    )

    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.PROTECT, related_name="prearchive_sessions",
        help_text="Empty: the Unassigned prearchive.",
    )
    timestamp = models.CharField(max_length=18, help_text="yyyyMMdd_HHmmssSSS: the folder above the session's")
    folder_name = models.CharField(max_length=80)
    name = models.CharField("label", max_length=64)
    subject = models.CharField(max_length=64, blank=True)
    tag = models.CharField("StudyInstanceUID", max_length=64)
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.RECEIVING)
    lastmod = models.DateTimeField(help_text="When the last file was received (or the last status change).")
    uploaded = models.DateTimeField(help_text="When the first file was received.")
    scan_date = models.DateField(null=True, blank=True)
    scan_time = models.TimeField(null=True, blank=True)
    autoarchive = models.IntegerField(
        null=True, blank=True,
        help_text="Prearchive code for this session (0 Manual, 4 AutoArchive, 5 AutoArchiveOverwrite); "
        "set from an AA: assignment or request parameter. Empty: the project's code.",
    )
    prevent_anon = models.BooleanField(default=False)
    prevent_auto_commit = models.BooleanField(default=False)
    source = models.CharField(max_length=64, blank=True)
    visit = models.CharField(max_length=64, blank=True)
    protocol = models.CharField(max_length=64, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    session_type = models.CharField(max_length=40, blank=True, help_text="e.g. xnat:mrSessionData")
    pet_tracer = models.CharField(max_length=64, blank=True)
    error_message = models.TextField(blank=True, help_text="Why the session is in CONFLICT or ERROR (no PHI).")
    file_count = models.PositiveIntegerField(default=0)
    filtered_count = models.PositiveIntegerField(default=0, help_text="Files dropped by series import filters.")
    rejected_count = models.PositiveIntegerField(
        default=0, help_text="Files refused: reject[] of the site script, or the script failed."
    )
    anon_failed_count = models.PositiveIntegerField(
        default=0, help_text="Files refused because the site-wide anonymization script failed on them."
    )
    size = models.BigIntegerField(default=0)
    document = models.JSONField(default=dict, blank=True, help_text="The session document (built).")
    built_at = models.DateTimeField(null=True, blank=True)
    calling_aet = models.CharField(max_length=16, blank=True)
    called_aet = models.CharField(max_length=16, blank=True)
    separated_from = models.CharField(
        max_length=255, blank=True, help_text="The prearchive URI of the PET-MR session this was split from."
    )
    overwrite = models.CharField(
        max_length=8, blank=True,
        help_text="The import's overwrite parameter (append or delete) for its auto-archive; empty: the "
        "project's prearchive code decides.",
    )

    class Meta:
        ordering = ["-lastmod"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "tag", "name"], name="prearchive_session_key", nulls_distinct=False
            ),
            models.UniqueConstraint(
                fields=["project", "timestamp", "folder_name"], name="prearchive_session_folder",
                nulls_distinct=False,
            ),
        ]
        # No index holds ``lastmod``: intake bumps it with every file, and an indexed column would make
        # each bump a full new row version plus index entries (measured: the largest cost of intake).
        # The idle sweep finds the few RECEIVING sessions by status and filters on lastmod.
        indexes = [
            models.Index(fields=["status"], name="prearchive_status"),
        ]

    def __str__(self) -> str:
        return self.uri

    @property
    def project_label(self) -> str:
        return self.project_id or UNASSIGNED

    @property
    def uri(self) -> str:
        return f"/data/prearchive/projects/{self.project_label}/{self.timestamp}/{self.folder_name}"

    @property
    def relative_dir(self) -> str:
        """The session folder relative to PREARCHIVE_ROOT. Unassigned sessions sit directly under the
        timestamp folder at the root, as XNAT lays them out."""
        if self.project_id:
            return f"{self.project_id}/{self.timestamp}/{self.folder_name}"
        return f"{self.timestamp}/{self.folder_name}"

    @property
    def document_relative_path(self) -> str:
        """The session document ``{folder}.xml``, a sibling of the session folder."""
        return self.relative_dir + ".xml"


class PrearchiveFile(models.Model):
    """One stored DICOM instance, with the header fields the builder needs so it never re-reads files."""

    # No index of its own: the unique (session, sop_instance_uid) index serves every look-up by session, and a
    # second index would be one more b-tree insert on every file intake stores.
    session = models.ForeignKey(PrearchiveSession, on_delete=models.CASCADE, related_name="files", db_index=False)
    sop_instance_uid = models.CharField(max_length=64)
    sop_class_uid = models.CharField(max_length=64, blank=True)
    study_instance_uid = models.CharField(max_length=64, blank=True)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    series_number = models.CharField(max_length=16, blank=True)
    scan_id = models.CharField(max_length=64)
    relative_path = models.CharField(max_length=512, help_text="Relative to the session folder.")
    size = models.BigIntegerField(default=0)
    instance_number = models.IntegerField(null=True, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    series_description = models.CharField(max_length=255, blank=True)
    series_date = models.CharField(max_length=8, blank=True)
    series_time = models.CharField(max_length=16, blank=True)
    study_date = models.CharField(max_length=8, blank=True)
    study_time = models.CharField(max_length=16, blank=True)
    station_name = models.CharField(max_length=64, blank=True)
    manufacturer = models.CharField(max_length=64, blank=True)
    manufacturer_model_name = models.CharField(max_length=64, blank=True)
    protocol_name = models.CharField(max_length=64, blank=True)
    body_part_examined = models.CharField(max_length=64, blank=True)
    requested_procedure_description = models.CharField(max_length=64, blank=True)
    image_type = models.CharField(max_length=255, blank=True)
    frames = models.PositiveIntegerField(default=1)
    radiopharmaceutical = models.CharField(max_length=64, blank=True)
    transfer_syntax_uid = models.CharField(max_length=64, blank=True)
    received = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "sop_instance_uid"], name="prearchive_file_sop"),
        ]

    def __str__(self) -> str:
        return self.relative_path


class IntakeRejection(models.Model):
    """A file intake refused or dropped: counted and visible to the admin. Never holds PHI."""

    class Reason(models.TextChoices):
        NOT_DICOM = "not_dicom", "Not a DICOM file"
        TRUNCATED = "truncated", "Truncated or unreadable DICOM"
        MISSING_UID = "missing_uid", "Missing Study or SOP Instance UID"
        INVALID_VALUE = "invalid_value", "Invalid header value"
        SCRIPT_REJECT = "script_reject", "Rejected by the site-wide anonymization script"
        ANON_FAILED = "anon_failed", "Site-wide anonymization failed"
        FILTERED = "filtered", "Filtered by a series import filter (no session)"

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    source = models.CharField(max_length=64, blank=True)
    reason_code = models.CharField(max_length=16, choices=Reason.choices)
    reason = models.TextField()
    study_instance_uid = models.CharField(max_length=64, blank=True)
    sop_instance_uid = models.CharField(max_length=64, blank=True)
    session = models.ForeignKey(
        PrearchiveSession, null=True, blank=True, on_delete=models.SET_NULL, related_name="rejections"
    )

    class Meta:
        ordering = ["-at"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.reason_code}"


class ScriptMemo(models.Model):
    """One memo entry of a DicomEdit script context (``mapReferencedUIDs``, ``mapUID``), shared by every file
    of a session and by every process that handles it (services/script_state.py). ``key`` is an HMAC (site
    secret) of the mapped value, never the value; ``value`` is the new UID the script gave it. Written with
    INSERT ... ON CONFLICT DO NOTHING and read back, so two processes map a value the same way."""

    scope = models.CharField(max_length=100, help_text="Which script and which session (HMAC of its study).")
    kind = models.CharField(max_length=8, help_text="ref: mapReferencedUIDs; uid: mapUID.")
    key = models.CharField(max_length=64, help_text="HMAC of the mapped value (and prefix).")
    value = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["scope", "kind", "key"], name="script_memo_key")]

    def __str__(self) -> str:
        return f"{self.scope} {self.kind}"


class SessionNote(models.Model):
    """A line of a session's processing record that its reviewers see: what the scripts ``echo``ed while
    its files were processed (never written to a log or a process's output)."""

    session = models.ForeignKey(PrearchiveSession, on_delete=models.CASCADE, related_name="notes")
    at = models.DateTimeField(auto_now_add=True)
    origin = models.CharField(max_length=32, help_text="site script, uploader, ...")
    text = models.TextField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.origin}: {self.text[:40]}"


class PhiFingerprint(models.Model):
    """A keyed hash (HMAC, site secret) of one identifying value a session's files arrived with (patient name
    and its parts, IDs, birth date, accession number, UIDs, institution, physicians, addresses, phones), never
    the value: what the residual-PHI check (services/residual.py) looks for in the files scripts wrote."""

    session = models.ForeignKey(PrearchiveSession, on_delete=models.CASCADE, related_name="phi_fingerprints",
                                db_index=False)
    category = models.CharField(max_length=40, help_text="The DICOM keyword the value came from.")
    digest = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["session", "digest", "category"], name="phi_fingerprint")]


class ResidualPhi(models.Model):
    """One finding of the residual-PHI check: an element of a session's output still holds an original
    identifying value. Kept for the prearchive session (on demand, before archiving) and for the archived
    session (after the archive's last script pass). Holds tags and scan IDs only, never a value."""

    session = models.ForeignKey(PrearchiveSession, null=True, blank=True, on_delete=models.CASCADE,
                                related_name="residual_phi")
    image_session = models.ForeignKey("xnatlite.ImageSession", null=True, blank=True, on_delete=models.CASCADE,
                                      related_name="residual_phi")
    where = models.CharField(max_length=255, help_text="The element, e.g. (0010,0020) or (0019,1010), with "
                             "its sequence path.")
    category = models.CharField(max_length=40, help_text="Which original: the DICOM keyword.")
    scans = models.JSONField(default=list)
    files = models.PositiveIntegerField(default=0)
    checked_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    @property
    def message(self) -> str:
        from prearchive.services.residual import finding_message

        return finding_message(where=self.where, category=self.category, scans=self.scans)
