"""PET-MR separation (XNAT's PrearchiveSeparatePetMrHandler / PrearcDatabase.separatePetMrSession).

A built PET/MR session in SEPARATING is split into an MR session and a PET session: PT scans go to the PET
session, every other scan to the MR one. Labels follow getUniqueSessionLabel(label, "PETMR", "MR"|"PET"):
the substring PETMR (or petmr) is replaced, else _MR / _PET is appended, then _1, _2, ... while the label is
taken in the project (prearchive or archive). The scan folders are moved by rename; the file rows follow.
"""
from __future__ import annotations

import logging
import os
import shutil

from django.db import transaction
from django.utils import timezone

from prearchive.models import PrearchiveFile, PrearchiveSession

from . import storage

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status

PARTS = (("MR", lambda modality: modality != "PT"), ("PET", lambda modality: modality == "PT"))


def _label_taken(project_id: str | None, label: str) -> bool:
    if PrearchiveSession.objects.filter(project_id=project_id, name=label).exists():
        return True
    if project_id is None:
        return False
    from xnatlite.models import ImageSession

    return ImageSession.objects.filter(project_id=project_id, label=label).exists()


def unique_session_label(*, project_id: str | None, label: str, modality_label: str) -> str:
    if "PETMR" in label:
        base = label.replace("PETMR", modality_label)
    elif "petmr" in label:
        base = label.replace("petmr", modality_label.lower())
    else:
        base = f"{label}_{modality_label}"
    candidate, n = base, 1
    while _label_taken(project_id, candidate):
        candidate = f"{base}_{n}"
        n += 1
    return candidate


def session_separate(*, session_id: int) -> list[int]:
    """Split a SEPARATING session; returns the new sessions' ids (QUEUED_BUILDING, ready to build)."""
    parent = PrearchiveSession.objects.filter(pk=session_id, status=Status.SEPARATING).first()
    if parent is None:
        return []
    scan_modality: dict[str, str] = {}
    for scan in parent.document.get("scans", []):
        scan_modality[scan["ID"]] = scan.get("modality", "")
    parent_dir = storage.root() / parent.relative_dir
    children: list[int] = []
    for modality_label, belongs in PARTS:
        scan_ids = [s for s, m in scan_modality.items() if belongs(m)]
        if not scan_ids:
            continue
        label = unique_session_label(project_id=parent.project_id, label=parent.name, modality_label=modality_label)
        now = timezone.now()
        with transaction.atomic():
            child = PrearchiveSession.objects.create(
                project_id=parent.project_id, tag=parent.tag, name=label, subject=parent.subject,
                timestamp=storage.timestamp_now(), folder_name=label, status=Status.QUEUED_BUILDING,
                lastmod=now, uploaded=parent.uploaded, autoarchive=parent.autoarchive,
                prevent_anon=parent.prevent_anon, prevent_auto_commit=parent.prevent_auto_commit,
                source=parent.source, visit=parent.visit, protocol=parent.protocol, timezone=parent.timezone,
                calling_aet=parent.calling_aet, called_aet=parent.called_aet, separated_from=parent.uri,
            )
            child_dir = storage.root() / child.relative_dir
            for scan_id in scan_ids:
                src = parent_dir / "SCANS" / scan_id
                if src.exists():
                    (child_dir / "SCANS").mkdir(parents=True, exist_ok=True)
                    os.replace(src, child_dir / "SCANS" / scan_id)
            PrearchiveFile.objects.filter(session_id=parent.pk, scan_id__in=scan_ids).update(session=child)
        children.append(child.pk)
        logger.info("prearchive session %s: %d scan(s) separated into session %s", parent.pk, len(scan_ids),
                    child.pk)
    with transaction.atomic():
        if PrearchiveFile.objects.filter(session_id=parent.pk).exists():
            # Files arrived meanwhile: keep the parent, receiving again.
            PrearchiveSession.objects.filter(pk=parent.pk).update(status=Status.RECEIVING, lastmod=timezone.now())
        else:
            PrearchiveSession.objects.filter(pk=parent.pk).delete()
            xml = parent_dir.with_name(parent_dir.name + ".xml")
            xml.unlink(missing_ok=True)
            shutil.rmtree(parent_dir, ignore_errors=True)
            storage.tree_remove_empty(parent_dir.parent, stop=storage.root())
    return children
