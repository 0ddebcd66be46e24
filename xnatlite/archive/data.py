"""Reads of archived data for XNAT's data REST: who may see what, lookups by ID or label, and the rows and
items XNAT answers for projects, subjects, experiments, scans, resources and files.

Identifiers: a subject's ID is ``XNATLITE_S{pk:05d}``, an experiment's its accession ID
(``XNATLITE_E{pk:05d}``); both are also found by label within their project. Each scan holds one resource,
``DICOM`` (a catalog ``SCANS/{scan}/DICOM/scan_{scan}_catalog.xml``), whose ``xnat_abstractresource_id`` is
the scan row's id.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

from django.db import transaction
from django.db.models import QuerySet

from xnatlite import permissions
from xnatlite.models import ImageSession, Project, Scan, Subject

from .services import CATALOG_SUFFIX, session_folder

SUBJECT_ID = re.compile(r"^XNATLITE_S(\d+)$")
CAT_NS = "http://nrg.wustl.edu/catalog"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SCAN_TYPES = {"MR": "xnat:mrScanData", "PT": "xnat:petScanData", "CT": "xnat:ctScanData", "US": "xnat:usScanData",
              "CR": "xnat:crScanData", "DX": "xnat:dxScanData", "NM": "xnat:nmScanData", "MG": "xnat:mgScanData",
              "XA": "xnat:xaScanData", "SC": "xnat:scScanData"}
SESSION_TYPES = {"xnat:mrSessionData", "xnat:petSessionData", "xnat:petmrSessionData", "xnat:ctSessionData",
                 "xnat:otherDicomSessionData", "xnat:crSessionData", "xnat:dxSessionData", "xnat:mgSessionData",
                 "xnat:nmSessionData", "xnat:usSessionData", "xnat:xaSessionData"}
# The xsiType values a listing may be filtered by (the schema's types).
KNOWN_TYPES = SESSION_TYPES | set(SCAN_TYPES.values()) | {
    "xnat:projectData", "xnat:subjectData", "xnat:experimentData", "xnat:subjectAssessorData",
    "xnat:imageSessionData", "xnat:imageScanData", "xnat:otherDicomScanData", "xnat:abstractResource",
    "xnat:resourceCatalog", "xnat:fileData"}
RESOURCE_LABEL = "DICOM"


def subject_id(subject: Subject) -> str:
    return f"XNATLITE_S{subject.pk:05d}"


def session_type(session: ImageSession) -> str:
    return session.session_type if session.session_type in SESSION_TYPES else "xnat:otherDicomSessionData"


def scan_type(scan: Scan) -> str:
    return SCAN_TYPES.get(scan.modality, "xnat:otherDicomScanData")


# ------------------------------------------------------------------ who sees what


def project_visible(user, project_id: str) -> Project | None:
    project = Project.objects.filter(pk=project_id).first()
    if project is None or not permissions.can_read_project(user, project.id):
        return None
    return project


def sessions_visible(user) -> QuerySet[ImageSession]:
    qs = ImageSession.objects.select_related("subject", "project")
    if permissions.is_site_admin(user):
        return qs
    readable = permissions.project_ids_for(user)
    managed = permissions.project_ids_for(user, roles=(permissions.Role.OWNER,))
    return qs.filter(project_id__in=readable).exclude(quarantined=True, project_id__in=set(readable) - set(managed))


def subjects_visible(user) -> QuerySet[Subject]:
    qs = Subject.objects.select_related("project")
    if permissions.is_site_admin(user):
        return qs
    return qs.filter(project_id__in=permissions.project_ids_for(user))


def subject_find(user, name: str, project: Project | None = None) -> Subject | None:
    """A visible subject by ID (XNATLITE_S...) or, within ``project``, by label."""
    qs = subjects_visible(user)
    if project is not None:
        qs = qs.filter(project=project)
    match = SUBJECT_ID.match(name)
    if match:
        found = qs.filter(pk=int(match.group(1))).first()
        if found is not None:
            return found
    if project is None:
        return None
    return qs.filter(label=name).first()


def experiment_find(user, name: str, project: Project | None = None,
                    subject: Subject | None = None) -> ImageSession | None:
    """A visible archived session by accession ID or, within ``project``, by label."""
    qs = sessions_visible(user)
    if project is not None:
        qs = qs.filter(project=project)
    if subject is not None:
        qs = qs.filter(subject=subject)
    found = qs.filter(accession_id=name).first()
    if found is None and project is not None:
        found = qs.filter(label=name).first()
    return found


# ------------------------------------------------------------------ rows and items


def _meta(xsi_type: str) -> dict[str, Any]:
    return {"isHistory": False, "xsi:type": xsi_type}


def project_row(p: Project) -> dict[str, Any]:
    return {"ID": p.id, "secondary_ID": p.id, "name": p.name, "description": p.description, "pi_firstname": "",
            "pi_lastname": "", "xsiType": "xnat:projectData", "URI": f"/data/projects/{p.id}"}


def project_item(p: Project) -> dict[str, Any]:
    fields = {"ID": p.id, "secondary_ID": p.id, "name": p.name, "description": p.description,
              "keywords": "", "URI": f"/data/projects/{p.id}"}
    return {"children": [], "meta": _meta("xnat:projectData"), "data_fields": fields}


def subject_row(s: Subject) -> dict[str, Any]:
    return {"ID": subject_id(s), "project": s.project_id, "label": s.label,
            "insert_date": s.created.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "insert_user": "",
            "xsiType": "xnat:subjectData", "URI": f"/data/subjects/{subject_id(s)}"}


def subject_item(s: Subject, sessions: list[ImageSession]) -> dict[str, Any]:
    fields = {"ID": subject_id(s), "project": s.project_id, "label": s.label, "URI": f"/data/subjects/{subject_id(s)}"}
    children = []
    if sessions:
        children.append({"field": "experiments/experiment", "items": [experiment_item(e) for e in sessions]})
    return {"children": children, "meta": _meta("xnat:subjectData"), "data_fields": fields}


def experiment_row(e: ImageSession) -> dict[str, Any]:
    return {"ID": e.accession_id, "label": e.label, "project": e.project_id, "subject_ID": subject_id(e.subject),
            "subject_label": e.subject.label, "date": e.scan_date.isoformat() if e.scan_date else "",
            "insert_date": e.archived_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3], "modality": e.modality,
            "xsiType": session_type(e), "xnat:subjectassessordata/id": e.accession_id,
            "URI": f"/data/experiments/{e.accession_id}"}


def _scan_fields(e: ImageSession, s: Scan) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ID": s.scan_id, "UID": s.series_instance_uid, "type": s.scan_type or s.series_description,
        "series_description": s.series_description, "modality": s.modality, "frames": s.frames,
        "quality": "usable", "image_session_ID": e.accession_id, "note": "",
    }
    fields.update((e.document or {}).get("scan_parameters", {}).get(s.scan_id, {}))
    return fields


def experiment_item(e: ImageSession) -> dict[str, Any]:
    scans = []
    for s in e.scans.all():
        scans.append({"children": [{"field": "file", "items": [resource_item(e, s)]}],
                      "meta": _meta(scan_type(s)), "data_fields": _scan_fields(e, s)})
    fields = {
        "ID": e.accession_id, "id": e.accession_id, "label": e.label, "project": e.project_id,
        "subject_ID": subject_id(e.subject), "UID": e.study_instance_uid, "modality": e.modality,
        "session_type": "", "date": e.scan_date.isoformat() if e.scan_date else "",
        "time": e.scan_time.isoformat() if e.scan_time else "", "quarantined": e.quarantined,
        "URI": f"/data/experiments/{e.accession_id}",
    }
    if e.pet_tracer:
        fields["tracer/name"] = e.pet_tracer
    if (e.document or {}).get("fieldStrength"):
        fields["fieldStrength"] = e.document["fieldStrength"]
    return {"children": [{"field": "scans/scan", "items": scans}] if scans else [],
            "meta": _meta(session_type(e)), "data_fields": fields}


def scan_row(e: ImageSession, s: Scan) -> dict[str, Any]:
    return {"xsiType": scan_type(s), "xnat_imagescandata_id": str(s.pk), "ID": s.scan_id,
            "type": s.scan_type or s.series_description, "quality": "usable",
            "series_description": s.series_description, "note": "", "frames": str(s.frames),
            "URI": f"/data/experiments/{e.accession_id}/scans/{s.scan_id}"}


def scan_item(e: ImageSession, s: Scan) -> dict[str, Any]:
    fields = _scan_fields(e, s)
    fields["URI"] = f"/data/experiments/{e.accession_id}/scans/{s.scan_id}"
    return {"children": [{"field": "file", "items": [resource_item(e, s)]}], "meta": _meta(scan_type(s)),
            "data_fields": fields}


def catalog_relative(s: Scan) -> str:
    """Where the session points to the scan's catalog, relative to the session folder (as XNAT's document)."""
    return f"SCANS/{s.scan_id}/DICOM/scan_{s.scan_id}_catalog.xml"


def catalog_path(e: ImageSession, s: Scan) -> Path:
    return session_folder(e) / catalog_relative(s)


def resource_row(e: ImageSession, s: Scan) -> dict[str, Any]:
    return {"xnat_abstractresource_id": str(s.pk), "label": RESOURCE_LABEL, "element_name": "xnat:resourceCatalog",
            "category": "scans", "cat_id": s.scan_id, "cat_desc": s.series_description, "format": "DICOM",
            "content": "RAW", "tags": "", "file_count": str(s.file_count), "file_size": str(s.size)}


def resource_item(e: ImageSession, s: Scan) -> dict[str, Any]:
    fields = {"xnat_abstractresource_id": s.pk, "label": RESOURCE_LABEL, "format": "DICOM", "content": "RAW",
              "file_count": s.file_count, "file_size": s.size, "URI": catalog_relative(s)}
    return {"children": [], "meta": _meta("xnat:resourceCatalog"), "data_fields": fields}


# ------------------------------------------------------------------ files on disk


@dataclass(frozen=True)
class ScanFile:
    scan: Scan
    path: Path

    @property
    def name(self) -> str:
        return self.path.name


def is_data_file(name: str) -> bool:
    """A file of the scan's data: not hidden, not its catalog."""
    return not name.startswith(".") and not name.endswith(CATALOG_SUFFIX)


def scan_folder(e: ImageSession, s: Scan) -> Path:
    return session_folder(e) / "SCANS" / s.scan_id / "DICOM"


def scan_files(e: ImageSession, scans: list[Scan]) -> list[ScanFile]:
    files = []
    for s in scans:
        folder = scan_folder(e, s)
        try:
            names = sorted(n for n in os.listdir(folder) if is_data_file(n))
        except FileNotFoundError:
            continue
        files.extend(ScanFile(scan=s, path=folder / n) for n in names)
    return files


def file_row(e: ImageSession, f: ScanFile, size: int) -> dict[str, Any]:
    return {"Name": f.name, "Size": str(size),
            "URI": f"/data/experiments/{e.accession_id}/scans/{f.scan.scan_id}/resources/{f.scan.pk}/files/{f.name}",
            "collection": RESOURCE_LABEL, "file_tags": "", "file_format": "DICOM", "file_content": "RAW",
            "cat_ID": str(f.scan.pk)}


# ------------------------------------------------------------------ catalogs and scan parameters


def _number(value) -> str | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return f"{number:g}"


def scan_parameters(path: Path) -> tuple[dict[str, str], str]:
    """XNAT's scan fields from one file's header (no pixel data): TR, TE, TI, flip angle, voxel size; and the
    field strength. Only the values the header has."""
    from pydicom import dcmread

    ds = dcmread(path, stop_before_pixels=True, force=True)
    params: dict[str, str] = {}
    for keyword, field in (("RepetitionTime", "parameters/tr"), ("EchoTime", "parameters/te"),
                           ("InversionTime", "parameters/ti"), ("FlipAngle", "parameters/flip")):
        value = _number(ds.get(keyword))
        if value is not None:
            params[field] = value
    spacing = ds.get("PixelSpacing")
    if spacing is not None and len(spacing) == 2:
        x, y = _number(spacing[1]), _number(spacing[0])
        if x is not None and y is not None:
            params["parameters/voxelRes/x"], params["parameters/voxelRes/y"] = x, y
    z = _number(ds.get("SliceThickness"))
    if z is not None:
        params["parameters/voxelRes/z"] = z
    strength = _number(ds.get("MagneticFieldStrength")) or ""
    if strength:
        params["fieldStrength"] = strength
    return params, strength


def _catalog_write(e: ImageSession, s: Scan, names: list[str]) -> None:
    ET.register_namespace("cat", CAT_NS)
    ET.register_namespace("xsi", XSI_NS)
    root = ET.Element(f"{{{CAT_NS}}}DCMCatalog", {"ID": f"{e.accession_id}_{s.scan_id}", "UID": s.series_instance_uid})
    entries = ET.SubElement(root, f"{{{CAT_NS}}}entries")
    for name in names:
        ET.SubElement(entries, f"{{{CAT_NS}}}entry", {"URI": name, "ID": name, "format": "DICOM", "content": "RAW",
                                                      f"{{{XSI_NS}}}type": "cat:dcmEntry"})
    target = catalog_path(e, s)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(ET.tostring(root, encoding="utf-8", xml_declaration=True))
    os.replace(tmp, target)


def session_catalogs_ensure(*, session: ImageSession, force: bool = False) -> int:
    """Write each scan's catalog where the session points to it, and record the scans' header parameters in
    the session document, when missing (or always with ``force``). Returns the number of catalogs written."""
    doc = dict(session.document or {})
    params = dict(doc.get("scan_parameters") or {})
    written = 0
    changed = False
    for s in session.scans.all():
        folder = scan_folder(session, s)
        if not folder.is_dir():
            continue
        catalog = catalog_path(session, s)
        need_params = s.scan_id not in params
        if catalog.exists() and not need_params and not force:
            continue
        names = sorted(n for n in os.listdir(folder) if is_data_file(n))
        if (force or not catalog.exists()) and names:
            _catalog_write(session, s, names)
            written += 1
        if (need_params or force) and names:
            try:
                params[s.scan_id], strength = scan_parameters(folder / names[0])
            except Exception:  # noqa: BLE001 - an unreadable header leaves the parameters empty
                params[s.scan_id], strength = {}, ""
            if strength and s.modality == "MR" and not doc.get("fieldStrength"):
                doc["fieldStrength"] = strength
            changed = True
    if changed:
        with transaction.atomic():  # merge into the stored document: an archive job may have changed it
            row = ImageSession.objects.select_for_update().filter(pk=session.pk).first()
            if row is None:
                return written
            stored = dict(row.document or {})
            stored["scan_parameters"] = {**(stored.get("scan_parameters") or {}), **params}
            if doc.get("fieldStrength") and not stored.get("fieldStrength"):
                stored["fieldStrength"] = doc["fieldStrength"]
            ImageSession.objects.filter(pk=session.pk).update(document=stored)
        session.document = stored
    return written
