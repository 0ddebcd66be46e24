"""System checks run at start-up (``manage.py check``): storage and receiver settings."""
from __future__ import annotations

import os
from pathlib import Path

from django.conf import settings
from django.core.checks import Error, Warning, register


@register()
def storage_roots_check(app_configs, **kwargs):
    problems = []
    for name in ("PREARCHIVE_ROOT", "ARCHIVE_ROOT", "UPLOAD_TMP_ROOT"):
        path = Path(getattr(settings, name))
        probe = path if path.exists() else path.parent
        if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
            problems.append(Error(f"{name} ({path}) is not writable.", id="xnatlite.E001",
                                  hint=f"Give the xnatlite user write access to {path}, or set {name}."))
    return problems


@register()
def dicom_receiver_check(app_configs, **kwargs):
    problems = []
    title = settings.DICOM_AE_TITLE
    if not title or len(title) > 16 or not title.isascii() or "\\" in title:
        problems.append(Error("DICOM_AE_TITLE must be 1 to 16 ASCII characters without backslashes.",
                              id="xnatlite.E002", hint="Set DICOM_AE_TITLE, e.g. XNATLITE."))
    if not 1 <= settings.DICOM_PORT <= 65535:
        problems.append(Error("DICOM_PORT must be a TCP port number.", id="xnatlite.E003",
                              hint="Set DICOM_PORT, e.g. 8104."))
    if not settings.DEBUG and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        problems.append(Warning("xnatlite is running on the embedded SQLite database.", id="xnatlite.W001",
                                hint="Set DATABASE_URL to a PostgreSQL database for real use."))
    return problems
