"""Reads used by more than one caller."""
from __future__ import annotations

from .models import Project, ProjectAlias, SiteConfig


def site_config_get() -> SiteConfig:
    config, _ = SiteConfig.objects.get_or_create(pk=1)
    return config


def dicomedit_allow_get_url() -> bool:
    """dicomEditAllowGetUrl: may DicomEdit's getURL[] fetch (every server-side script run asks this)."""
    return bool(site_config_get().dicom_edit_allow_get_url)


def project_resolve(name: str) -> str | None:
    """The ID of the project whose ID or alias is ``name`` (case-sensitive, as XNAT), else None."""
    if not name:
        return None
    if Project.objects.filter(pk=name).exists():
        return name
    alias = ProjectAlias.objects.filter(alias=name).values_list("project_id", flat=True).first()
    return alias
