"""What intake needs from the settings tables, read once per second instead of once per file.

A snapshot holds the site settings intake uses and every project's ID, aliases and series filter. It is
refreshed after ``TTL`` seconds and dropped at once when this process saves or deletes a SiteConfig,
Project or ProjectAlias (signals; also when a Django setting changes), so other processes see a change within a second.

Inside a transaction (``connection.in_atomic_block``: tests, or a caller's own atomic block) a snapshot is
kept apart, by the same rules, and only for as long as the transaction (or savepoint) that read it is open:
with it, a no-op marker is registered with ``transaction.on_commit``; Django drops that marker when the
transaction commits or rolls back, or when the savepoint it was registered in rolls back, and a snapshot
whose marker is gone is never used again. So a value read inside a transaction that is rolled back is never
seen after it, and a change saved inside the transaction is seen at once (the signals drop the snapshot).
A bulk ``QuerySet.update()`` sends no signal: as outside a transaction, it is seen within ``TTL``, or at
once after :func:`invalidate`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, connections, transaction
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
# In a transaction: per thread, (time, database name, the connection, its on_commit marker, snapshot).
_in_tx = threading.local()


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
        return _snapshot_in_transaction(conn)
    key = conn.settings_dict.get("NAME", "")
    now = time.monotonic()
    cached = _cached
    if cached is not None and cached[1] == key and now - cached[0] < TTL:
        return cached[2]
    fresh = _load()
    with _lock:
        _cached = (now, key, fresh)
    return fresh


def _snapshot_in_transaction(conn) -> Snapshot:
    key = conn.settings_dict.get("NAME", "")
    now = time.monotonic()
    held = getattr(_in_tx, "held", None)
    if (held is not None and held[1] == key and held[2] is conn and now - held[0] < TTL
            and _generation == held[5]
            and any(entry[1] is held[3] for entry in reversed(conn.run_on_commit))):
        return held[4]
    fresh = _load()
    marker = lambda: None  # noqa: E731 - a new function each time: its identity marks this snapshot
    transaction.on_commit(marker, using=DEFAULT_DB_ALIAS)
    _in_tx.held = (now, key, conn, marker, fresh, _generation)
    return fresh


_generation = 0  # counts invalidations: a snapshot read in a transaction (any thread's) is kept only while
# no save, delete or settings change happened since


def invalidate(**kwargs) -> None:
    global _cached, _generation
    with _lock:
        _cached = None
        _generation += 1


def _connect() -> None:
    from xnatlite.models import Project, ProjectAlias, SiteConfig

    for model in (SiteConfig, Project, ProjectAlias):
        post_save.connect(invalidate, sender=model, weak=False, dispatch_uid=f"prearchive.ctx.save.{model.__name__}")
        post_delete.connect(invalidate, sender=model, weak=False,
                            dispatch_uid=f"prearchive.ctx.delete.{model.__name__}")
    setting_changed.connect(invalidate, weak=False, dispatch_uid="prearchive.ctx.setting")


_connect()
