"""Step d of the archive job: record what is now on disk (Subject, ImageSession, Scans, AuditEvent) in one
transaction. The ImageSession remembers which prearchive operations it holds (``prearchive_ops``), so a
retried job knows this step is done."""
from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.db import transaction

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import archive_tree as tree
from prearchive.services.conflicts import series_scan_ids
from xnatlite.models import ImageSession, Project, Scan, Subject
from xnatlite.services import audit_record

if TYPE_CHECKING:
    from prearchive.services.archive import Target


def accession_assign(session: ImageSession) -> None:
    """XNAT-style accession ID ``XNATLITE_E00001`` from the row id."""
    session.accession_id = f"XNATLITE_E{session.pk:05d}"
    ImageSession.objects.filter(pk=session.pk).update(accession_id=session.accession_id)


def _scan_meta(session: PrearchiveSession, renames: dict[str, str]) -> dict[str, dict]:
    from prearchive.services.archive import scan_id_final

    ids = series_scan_ids(session_id=session.pk)
    meta: dict[str, dict] = {}
    for row in (PrearchiveFile.objects.filter(session=session).order_by("scan_id", "instance_number", "pk")
                .values("scan_id", "series_instance_uid", "series_description", "modality", "frames")):
        scan_id = scan_id_final(ids, renames, row["scan_id"], row["series_instance_uid"])
        entry = meta.setdefault(scan_id, {"uid": row["series_instance_uid"] or "",
                                          "description": row["series_description"] or "",
                                          "modality": row["modality"] or "", "frames": 0})
        entry["frames"] += row["frames"] or 1
    return meta


def session_record(*, session: PrearchiveSession, target: "Target", dirs: tree.ArchiveDirs, op: str,
                   renames: dict[str, str], notices: list, rejected: int) -> ImageSession:
    from prearchive.services.archive import archive_uri

    project = Project.objects.get(pk=target.project_id)
    meta = _scan_meta(session, renames)
    stats = tree.scan_stats(dirs.final)
    quarantined = target.quarantine if target.quarantine is not None else project.quarantine_code == 1
    with transaction.atomic():
        PrearchiveSession.objects.select_for_update().filter(pk=session.pk).first()
        subject, _ = Subject.objects.get_or_create(project=project, label=target.subject)
        record = ImageSession.objects.select_for_update().filter(project=project, label=target.label).first()
        created = record is None
        if created:
            record = ImageSession.objects.create(
                project=project, subject=subject, label=target.label, accession_id=uuid.uuid4().hex[:32],
                study_instance_uid=session.tag, archive_path=dirs.relative, archived_by=target.actor,
                quarantined=quarantined, document={})
            accession_assign(record)
        elif target.overwrite == "delete":
            record.scans.all().delete()
            record.subject = subject
            record.study_instance_uid = session.tag
        record.modality = session.modality or record.modality
        record.session_type = session.session_type or record.session_type
        record.scan_date = session.scan_date or record.scan_date
        record.scan_time = session.scan_time or record.scan_time
        record.pet_tracer = target.tracer or record.pet_tracer
        record.archive_path = dirs.relative
        record.archived_by = target.actor or record.archived_by
        if quarantined:
            record.quarantined = True
        doc = dict(record.document or {})
        doc["prearchive_ops"] = (doc.get("prearchive_ops") or []) + [op]
        doc.setdefault("sources", []).append({"prearchive": session.uri, "overwrite": target.overwrite})
        record.document = doc
        record.save()
        existing = {s.scan_id: s for s in record.scans.all()}
        for scan_id, (count, size) in stats.items():
            info = meta.get(scan_id)
            scan = existing.get(scan_id) or Scan(session=record, scan_id=scan_id)
            if info is not None:
                scan.series_instance_uid = info["uid"]
                scan.series_description = info["description"]
                scan.scan_type = info["description"]
                scan.modality = info["modality"]
                scan.frames = (scan.frames if scan.pk and target.overwrite == "append" else 0) + info["frames"]
            scan.file_count, scan.size = count, size
            scan.save()
        Scan.objects.filter(session=record).exclude(scan_id__in=list(stats)).delete()
        audit_record(actor=target.actor, action="session_archive", project_id=project.id,
                     subject_label=target.subject, session_label=target.label,
                     prearchive=session.uri, prearchive_id=session.pk,
                     archive=archive_uri(project.id, target.subject, target.label),
                     overwrite=target.overwrite, files=sum(c for c, _ in stats.values()), rejected=rejected,
                     created=created, quarantined=record.quarantined)
    return record
