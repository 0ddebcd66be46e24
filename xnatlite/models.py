"""Core models: site configuration, projects and their members, and the archive."""
from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models

from .defaults import DEFAULT_DICOM_FILE_NAME_TEMPLATE, DEFAULT_PET_TRACERS, DEFAULT_SITE_ANON_SCRIPT

ID_VALIDATOR = RegexValidator(
    r"^[A-Za-z0-9_-]{1,64}$", "Use 1 to 64 letters, digits, underscores or hyphens."
)


class FilterMode(models.TextChoices):
    BLACKLIST = "blacklist", "Blacklist"
    WHITELIST = "whitelist", "Whitelist"
    MODALITY_MAP = "modalityMap", "Modality map"


class PetMr(models.TextChoices):
    PETMR = "petmr", "Create as PET/MR session"
    PET = "pet", "Create as PET session"
    SEPARATE = "separate", "Separate into PET and MR sessions"


class PrearchiveCode(models.IntegerChoices):
    MANUAL = 0, "All image data will be placed into the prearchive (Manual)"
    AUTO_ARCHIVE = 4, "Auto-archive; new files are appended to an existing session (AutoArchive)"
    AUTO_ARCHIVE_OVERWRITE = 5, "Auto-archive; existing files are overwritten (AutoArchiveOverwrite)"


class SiteConfig(models.Model):
    """The singleton (pk=1) of site-wide import settings. Keys on the REST API are XNAT's names
    (see ``xnatlite.site_settings.PROPERTIES``)."""

    # Available upload methods
    ui_hide_compressed_uploader_upload_option = models.BooleanField(
        "Hide Compressed Uploader", default=False,
        help_text='If set to "Hidden", the Compressed Uploader is removed from the "Upload > Images" menu. '
        "(The DICOM-zip importer is enabled regardless of this setting.)",
    )
    ui_hide_xnat_upload_assistant_download = models.BooleanField(
        "Hide XNAT Upload Assistant", default=True,
        help_text='If set to "Hidden", the legacy XNAT Upload Assistant is removed from the "Upload > Images" menu',
    )
    # Session builder
    received_file_user = models.CharField(
        "Received File User", max_length=150, default="admin",
        help_text="This is the user account used for any operations performed on incoming data, such as "
        "performing an anonymization script. The user account must be a site administrator and must be a "
        "user that is able to log in (i.e. not disabled). By default this is set to 'admin'.",
    )
    session_xml_rebuilder_repeat = models.PositiveIntegerField(
        "Session Idle Check Interval (ms)", default=60000, validators=[MinValueValidator(1)],
        help_text="This controls how often the system checks to see if any incoming DICOM sessions in the "
        "prearchive have been idle for longer than the configured session idle time. This value should be "
        "specified in milliseconds and defaults to 60,000 ms or one minute.",
    )
    session_xml_rebuilder_interval = models.PositiveIntegerField(
        "Session Idle Time (min)", default=5, validators=[MinValueValidator(1)],
        help_text="This tells the system how long a DICOM session should sit idle—that is, with no new data "
        "added to the session—before attempting to build a session document from the DICOM data. This "
        "value is specified in minutes and defaults to 5 minutes.",
    )
    reload_prearc_database_on_startup = models.BooleanField(
        "Reload Prearchive Database On Start-up?", default=False,
        help_text="This controls whether the prearchive database is rebuilt when your XNAT server restarts. "
        "This can help keep your system in sync with the data in prearchive, but can add to system load at "
        "start-up, especially on systems that handle a lot of incoming data.",
    )
    session_archive_timeout_interval = models.PositiveIntegerField(
        "Session archive timeout (s)", default=600, validators=[MinValueValidator(1)],
        help_text="How long an archive operation may run before it is considered stuck.",
    )
    # Site-wide anonymization
    enable_sitewide_anonymization_script = models.BooleanField(
        "Enable Site-wide Anonymization Script?", default=True,
        help_text="This controls whether the site-wide anonymization script should be enabled. Site-wide "
        "anonymization is enabled by default. Note that if the site-wide anonymization is enabled, even "
        "with an empty script, it will add a deidentification method status entry to DICOM headers. To "
        "allow DICOM files to be imported without any changes, disable site-wide anonymization.",
    )
    sitewide_anonymization_script = models.TextField(
        "Edit Anonymization Script", blank=True, default=DEFAULT_SITE_ANON_SCRIPT,
        help_text="This is the site-wide anonymization script applied to all incoming and archiving DICOM "
        "resources. The script must conform to DicomEdit format (new scripts should use DicomEdit 6.1: "
        'start with version "6.1"; scripts without a version line run as DicomEdit 4.2).',
    )
    prevent_anon_allowed = models.CharField(
        "Who may skip the scripts (prevent_anon)", max_length=16, default="owners",
        choices=[("admins", "Site administrators only"),
                 ("owners", "Site administrators and the project's owners"),
                 ("uploaders", "Everyone who may upload to the project")],
        help_text="An upload that says prevent_anon=true (its client already applied the scripts) skips the "
        "site and project anonymization only when it comes from one of these; from anyone else the flag is "
        "ignored and the scripts run.",
    )
    residual_phi_refuse_archive = models.BooleanField(
        "Refuse to archive sessions with residual PHI?", default=False,
        help_text="After the last anonymization script pass of an archive, every text, name, date and UID "
        "element of every file (sequences and private elements included) is compared with keyed hashes of the "
        "identifying values the files arrived with. When this is on, a session in which one is still found "
        "(or whose label equals the patient's name or ID) is not archived; it stays in the prearchive in ERROR "
        "with what was found. Off: it is archived and the finding is shown on its page.",
    )
    rerun_project_anon_on_rename = models.BooleanField(
        "Rerun project anonymization on relabel/move", default=False,
        help_text="Re-run the project anonymization script on archived files when a session's subject, "
        "label or project changes.",
    )
    # Site-wide series import filter
    enable_sitewide_series_import_filter = models.BooleanField(
        "Enable Site-wide Series Import Filter?", default=False,
        help_text="This controls whether the series import filter should be enabled. It is disabled by default.",
    )
    sitewide_series_import_filter_mode = models.CharField(
        "Filter Mode", max_length=16, choices=FilterMode.choices, default=FilterMode.BLACKLIST,
        help_text='"whitelist": only DICOM series with a series description that matches one of series '
        'filter patterns will be considered. "blacklist": all DICOM series will be considered except for '
        'series that have one of the specified series filter patterns. "modality map": lets you specify '
        "boolean expressions in JavaScript that can use DICOM header values from incoming DICOM objects to "
        "decide the appropriate modality for the destination session.",
    )
    sitewide_series_import_filter = models.TextField(
        "Edit Series Import Filter", blank=True, default="",
        help_text="The series filters can be written as exact string matches, but also can be regular "
        "expressions. The regular expressions are evaluated using the Java regular expression syntax. These "
        'expressions are case-insensitive, i.e. the string "SAG LOCALIZER" will also match "Sag '
        'Localizer". Each filter should be on its own line.',
    )
    # PET
    sitewide_pet_tracers = models.TextField(
        "Pet Tracers (Site Wide)", blank=True, default=DEFAULT_PET_TRACERS,
        help_text="This is the site-wide list of PET tracers. List entries should be separated by "
        "whitespace. This list can also be replaced at the project level. When users upload PET Sessions "
        "using the Image Session Uploader, they can select a tracer from this list and that value will be "
        "stored as a session modifier.",
    )
    sitewide_pet_mr = models.CharField(
        "Separate PET-MR (Site Wide)", max_length=16, choices=PetMr.choices, blank=True, default="",
        help_text="This controls whether data generated by PET-MR scanners are created as a single PET/MR "
        "imaging session, created as a single PET imaging session, or separated into PET and MR sessions. "
        "If no option is selected, it will default to creating a single PET/MR imaging session rather than "
        "separating them.",
    )
    # Other XNAT properties that the import path uses
    ui_default_compressed_uploader_importer = models.CharField(
        "Default Uploader Importer", max_length=16, default="DICOM-zip",
        choices=[("DICOM-zip", "DICOM-zip"), ("SI", "SI")],
        help_text="The importer used by the compressed uploader when none is named.",
    )
    default_project_auto_archive_setting = models.IntegerField(
        "Default prearchive code for new projects", choices=PrearchiveCode.choices, default=4,
        help_text="The prearchive code given to new projects.",
    )
    project_allow_auto_archive = models.BooleanField(
        "Projects may auto-archive", default=True,
        help_text="If off, projects may only use the prearchive (code 0).",
    )
    ui_allow_quarantine = models.BooleanField(
        "Allow quarantine", default=True,
        help_text="Show quarantine settings. Off: projects' quarantine setting is not shown (admin, project page) "
        "and cannot be turned on (REST quarantine_code/1 is refused).")
    ui_allow_non_admin_project_creation = models.BooleanField(
        "Allow non-admin users to create projects", default=True,
        help_text="On: any logged-in user may create a project (and becomes its owner). Off: only site "
        "administrators create projects (XNAT's \"restrict project creation to admins\").",
    )
    enable_dicom_receiver = models.BooleanField(
        "Enable DICOM receiver", default=True, help_text="Accept DICOM C-STORE requests."
    )
    dicom_file_name_template = models.CharField(
        "Stored DICOM file name", max_length=255, default=DEFAULT_DICOM_FILE_NAME_TEMPLATE,
        help_text="The name given to every stored DICOM file: ${Keyword} is that attribute's value in the stored "
        "file, ${HashSOPClassUIDWithSOPInstanceUID} a short hash of both UIDs. Names from uploads are never "
        "kept (as XNAT with rename=true), so the import's rename parameter changes nothing.",
    )
    # Intake safety (xnatlite's own)
    inbox_path = models.CharField(
        "DICOM inbox root", max_length=1024, blank=True, default="",
        help_text="Server-side folder under which the inbox importer may read. Empty: the inbox is off.",
    )
    upload_max_bytes = models.BigIntegerField(
        "Maximum uncompressed upload size (bytes)", default=50 * 1024**3, validators=[MinValueValidator(1)],
        help_text="An archive whose entries add up to more than this is refused.",
    )
    upload_max_entries = models.PositiveIntegerField(
        "Maximum entries per upload", default=200_000, validators=[MinValueValidator(1)],
        help_text="An archive with more entries than this is refused.",
    )
    upload_max_compression_ratio = models.PositiveIntegerField(
        "Maximum compression ratio", default=200, validators=[MinValueValidator(1)],
        help_text="An archive entry that expands by more than this factor is refused (zip bomb defence).",
    )
    dicom_edit_allow_get_url = models.BooleanField(
        "Allow getURL[] in DicomEdit scripts", default=False,
        help_text="DicomEdit's getURL function makes HTTP requests from the server; it is off unless enabled.",
    )

    class Meta:
        verbose_name = "Session Upload, Import & Anonymization"
        verbose_name_plural = "Session Upload, Import & Anonymization"
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="siteconfig_singleton")]

    def __str__(self) -> str:
        return "Session Upload, Import & Anonymization"

    @property
    def pet_tracer_list(self) -> list[str]:
        return self.sitewide_pet_tracers.split()


class Project(models.Model):
    id = models.CharField("ID", primary_key=True, max_length=64, validators=[ID_VALIDATOR])
    name = models.CharField(max_length=255, blank=True)
    description = models.TextField(blank=True)
    prearchive_code = models.IntegerField(choices=PrearchiveCode.choices, default=PrearchiveCode.AUTO_ARCHIVE)
    quarantine_code = models.IntegerField(choices=[(0, "Off"), (1, "On")], default=0)
    anon_script = models.TextField("Anonymization script", blank=True, default="")
    anon_script_enabled = models.BooleanField("Anonymization script enabled", default=False)
    series_import_filter_enabled = models.BooleanField(default=False)
    series_import_filter_mode = models.CharField(
        max_length=16, choices=FilterMode.choices, default=FilterMode.BLACKLIST
    )
    series_import_filter = models.TextField(blank=True, default="")
    pet_tracers_enabled = models.BooleanField("Project PET tracers enabled", default=False)
    pet_tracers = models.TextField("PET tracers", blank=True, default="")
    pet_mr = models.CharField(
        "PET-MR handling", max_length=16, choices=PetMr.choices, blank=True, default="",
        help_text="Empty: use the site-wide setting.",
    )
    allow_create_subject = models.BooleanField(default=True)
    require_date = models.BooleanField("Require visit date", default=False)
    allow_bulk_upload = models.BooleanField(default=True)
    default_subject_labeling_scheme = models.CharField(max_length=255, blank=True, default="")
    default_session_labeling_scheme = models.CharField(max_length=255, blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.id


class ProjectAlias(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="aliases")
    alias = models.CharField(max_length=64, unique=True, validators=[ID_VALIDATOR])

    class Meta:
        verbose_name_plural = "project aliases"

    def __str__(self) -> str:
        return self.alias


class ProjectMember(models.Model):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        MEMBER = "member", "Member"
        COLLABORATOR = "collaborator", "Collaborator"

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["project", "user"], name="one_role_per_project")]

    def __str__(self) -> str:
        return f"{self.user} ({self.role}) in {self.project_id}"


class Subject(models.Model):
    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="subjects")
    label = models.CharField(max_length=64, validators=[ID_VALIDATOR])
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["project_id", "label"]
        constraints = [models.UniqueConstraint(fields=["project", "label"], name="subject_label_per_project")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.label}"


class ImageSession(models.Model):
    """An archived imaging session (XNAT experiment)."""

    project = models.ForeignKey(Project, on_delete=models.PROTECT, related_name="sessions")
    subject = models.ForeignKey(Subject, on_delete=models.PROTECT, related_name="sessions")
    label = models.CharField(max_length=64, validators=[ID_VALIDATOR])
    accession_id = models.CharField(max_length=32, unique=True)
    study_instance_uid = models.CharField(max_length=64, db_index=True)
    modality = models.CharField(max_length=16, blank=True)
    session_type = models.CharField(max_length=32, blank=True, help_text="e.g. xnat:mrSessionData")
    scan_date = models.DateField(null=True, blank=True)
    scan_time = models.TimeField(null=True, blank=True)
    pet_tracer = models.CharField(max_length=64, blank=True)
    quarantined = models.BooleanField(default=False)
    archive_path = models.CharField(max_length=1024, help_text="Relative to ARCHIVE_ROOT")
    archived_at = models.DateTimeField(auto_now_add=True)
    archived_by = models.CharField(max_length=150, blank=True)
    document = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["project_id", "label"]
        constraints = [models.UniqueConstraint(fields=["project", "label"], name="session_label_per_project")]

    def __str__(self) -> str:
        return f"{self.project_id}/{self.label}"


class Scan(models.Model):
    session = models.ForeignKey(ImageSession, on_delete=models.CASCADE, related_name="scans")
    scan_id = models.CharField(max_length=64)
    series_instance_uid = models.CharField(max_length=64, blank=True)
    series_description = models.CharField(max_length=255, blank=True)
    modality = models.CharField(max_length=16, blank=True)
    scan_type = models.CharField(max_length=255, blank=True)
    frames = models.PositiveIntegerField(default=0)
    file_count = models.PositiveIntegerField(default=0)
    size = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["session_id", "scan_id"]
        constraints = [models.UniqueConstraint(fields=["session", "scan_id"], name="scan_id_per_session")]

    def __str__(self) -> str:
        return f"{self.session} scan {self.scan_id}"


class AuditEvent(models.Model):
    """Who did what, when. Holds plain values, not foreign keys, so it outlives what it describes.
    Never holds PHI: labels and UIDs only."""

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=64)
    project_id = models.CharField(max_length=64, blank=True, db_index=True)
    subject_label = models.CharField(max_length=64, blank=True)
    session_label = models.CharField(max_length=64, blank=True)
    details = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.project_id}/{self.session_label}"


class SchedulerHeartbeat(models.Model):
    """The last run of each periodic job, so admins (and tests) can see the beat is alive."""

    name = models.CharField(max_length=100, unique=True)
    last_run = models.DateTimeField()
    runs = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return self.name


class ArchiveJob(models.Model):
    """A relabel, move or subject relabel of archived data, run by a worker (xnatlite/archive/jobs.py).
    ``params`` holds labels only; ``error`` is a message for the user, never PHI."""

    class Op(models.TextChoices):
        SESSION_UPDATE = "session_update", "Relabel / move / reassign a session"
        SUBJECT_RELABEL = "subject_relabel", "Relabel a subject"

    class Status(models.TextChoices):
        QUEUED = "QUEUED"
        RUNNING = "RUNNING"
        DONE = "DONE"
        FAILED = "FAILED"

    op = models.CharField(max_length=32, choices=Op.choices)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    project_id = models.CharField(max_length=64)
    session = models.ForeignKey(ImageSession, null=True, blank=True, on_delete=models.SET_NULL,
                                related_name="jobs")
    subject = models.ForeignKey(Subject, null=True, blank=True, on_delete=models.SET_NULL, related_name="jobs")
    params = models.JSONField(default=dict, blank=True)
    actor = models.CharField(max_length=150, blank=True)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    result = models.CharField(max_length=255, blank=True, help_text="The archive URI once done.")
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]

    def __str__(self) -> str:
        return f"{self.op} {self.project_id} {self.status}"
