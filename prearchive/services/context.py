"""What intake needs from the settings tables, read once per second instead of once per file.

A snapshot holds the site settings intake uses and every project's ID, aliases and series filter. It is
refreshed after ``TTL`` seconds and dropped at once when this process saves or deletes a SiteConfig,
Project or ProjectAlias (signals), so other processes see a change within a second. Inside a transaction
(``connection.in_atomic_block``: tests, or a caller's own atomic block) it is not used at all: reads are
fresh, as they would be without it.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models.signals import post_delete, post_save

TTL = 1.0


@dataclass(frozen=True)
class ProjectInfo:
    filter_enabled: bool
    filter_mode: str
    filter_text: str


@dataclass(frozen=True)
class Snapshot:
    anon_enabled: bool
    anon_script: str
    site_filter: tuple[str, str] | None
    projects: dict[str, ProjectInfo] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    allow_get_url: bool = False  # dicomEditAllowGetUrl
    inflate_max: int = 256 * 1024 * 1024  # a Deflated file inflates to at most this (headers.header_read)
    file_name_template: str = ""  # dicomFileNameTemplate

    def resolve(self, name: str) -> str | None:
        if not name:
            return None
        if name in self.projects:
            return name
        return self.aliases.get(name)


_lock = threading.Lock()
_cached: tuple[float, str, Snapshot] | None = None


def _load() -> Snapshot:
    from xnatlite.models import Project, ProjectAlias
    from xnatlite.selectors import site_config_get

    config = site_config_get()
    site_filter = None
    if config.enable_sitewide_series_import_filter and config.sitewide_series_import_filter.strip():
        site_filter = (config.sitewide_series_import_filter_mode, config.sitewide_series_import_filter)
    projects = {
        pid: ProjectInfo(bool(enabled), mode, text or "")
        for pid, enabled, mode, text in Project.objects.values_list(
            "id", "series_import_filter_enabled", "series_import_filter_mode", "series_import_filter")
    }
    aliases = dict(ProjectAlias.objects.values_list("alias", "project_id"))
    return Snapshot(anon_enabled=config.enable_sitewide_anonymization_script,
                    anon_script=config.sitewide_anonymization_script, site_filter=site_filter,
                    projects=projects, aliases=aliases, allow_get_url=config.dicom_edit_allow_get_url,
                    inflate_max=min(config.upload_max_bytes, settings.DICOM_INFLATED_MAX_BYTES),
                    file_name_template=config.dicom_file_name_template)


def snapshot() -> Snapshot:
    global _cached
    conn = connections[DEFAULT_DB_ALIAS]  # one look-up of the thread's connection, not two
    if conn.in_atomic_block:
        return _load()
    key = conn.settings_dict.get("NAME", "")
    now = time.monotonic()
    cached = _cached
    if cached is not None and cached[1] == key and now - cached[0] < TTL:
        return cached[2]
    fresh = _load()
    with _lock:
        _cached = (now, key, fresh)
    return fresh


def invalidate(**kwargs) -> None:
    global _cached
    with _lock:
        _cached = None


def _connect() -> None:
    from xnatlite.models import Project, ProjectAlias, SiteConfig

    for model in (SiteConfig, Project, ProjectAlias):
        post_save.connect(invalidate, sender=model, weak=False, dispatch_uid=f"prearchive.ctx.save.{model.__name__}")
        post_delete.connect(invalidate, sender=model, weak=False,
                            dispatch_uid=f"prearchive.ctx.delete.{model.__name__}")


_connect()
