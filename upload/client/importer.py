"""Confirm and import a transfer, and render a scan's representative frame for the pixel template editor.

Confirmation checks everything the user chose (subjects, labels, tracers, scans, the scripts' variables,
the visit dates, the pixel rectangles) before a single file moves. A wrong visit date keeps the transfer and
names the sessions that disagree, so the user can correct them; after MAX_DATE_ATTEMPTS refused tries (each
audited) the upload is refused and its files removed, so a date cannot be guessed by retrying for ever. The
import then runs, per file:
the site and project scripts (with the labels and variables), the scan's pixel template (alterPixels
rectangles on every frame; Burned In Annotation = NO), and intake with ``prevent_anon``.
"""
from __future__ import annotations

import io
import logging
import os
import time
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from xnatlite.models import Subject
from xnatlite.services import audit_record

from . import services
from .inspect import manifest_read
from .manifest import LABEL_RE
from .models import Transfer
from .scripts import Anonymizer, ScriptProblem, pixel_script, scripts_for

logger = logging.getLogger(__name__)
Status = Transfer.Status
MAX_RECTANGLES = 50

MSG_NO_SESSION = "Choose at least one session to upload."
MSG_SINGLE_ONLY = "This project uploads one session at a time."
MSG_UNKNOWN = "There is no session {key!r} in this upload."
MSG_SUBJECT = "Enter a subject label for every session."
MSG_NEW_SUBJECT = ("Project {project} does not allow new subjects to be created on upload; {subject!r} is not an "
                   "existing subject.")
MSG_LABEL = "{what} {value!r} may only hold letters, digits, '_' and '-' (at most 64)."
MSG_NO_LABEL = "Enter a session label for every session."
MSG_DUP_LABEL = "The session label {label!r} is used for two sessions of this upload."
MSG_TRACER = "{value!r} is not one of this project's PET tracers."
MSG_TRACER_NOT_PET = "A PET tracer is only used for sessions with PET scans."
MSG_NO_SCANS = "Choose at least one scan of each session."
MSG_UNKNOWN_SCAN = "Scan {scan!r} is not part of session {key!r}."
MSG_FILTERED_SCAN = "Scan {scan!r} of session {key!r} will be filtered by the import filter; it cannot be uploaded."
MSG_ALL_FILTERED = "Every series of session {key!r} will be filtered by the import filter; leave it out."
MSG_VARIABLE = "The anonymization scripts do not ask for a variable named {name!r}."
MSG_DATE_MISSING = "Project {project} requires the visit date of each session (or tick \"I don't know the dates\")."
MSG_DATE_WRONG = ("The visit date you entered does not match the data. The upload was refused and its files "
                  "removed; check that you chose the right project and session.")
MSG_DATE_RETRY = ("The visit date does not match the data for {n} of the sessions (marked). Correct it and press "
                  "Upload again ({left} {tries} left), or discard the upload.")
MAX_DATE_ATTEMPTS = 3


class VisitDateMismatch(ValidationError):
    """Some sessions' visit dates disagree with the data; the transfer waits for a correction."""

    def __init__(self, message: str, *, wrong: list[str], attempts_left: int):
        super().__init__(message, code="visit_date")
        self.wrong, self.attempts_left = wrong, attempts_left
MSG_RECT = "A pixel rectangle must be four whole numbers: left, top, right, bottom."
MSG_ANON_FAILED = "the anonymization script failed on this file ({error}); it was not stored"
MSG_WORK_GONE = "The upload's files are no longer on the server; upload them again."
MSG_PIXEL_FAILED = "the pixel template could not be applied to this file ({error}); it was not stored"


def _rectangles(raw: Any, rows: int, cols: int) -> list[list[int]]:
    out = []
    for rect in list(raw or [])[:MAX_RECTANGLES]:
        try:
            left, top, right, bottom = (int(round(float(v))) for v in rect)
        except (TypeError, ValueError):
            raise ValidationError(MSG_RECT) from None
        left, right = sorted((max(0, min(cols, left)), max(0, min(cols, right))))
        top, bottom = sorted((max(0, min(rows, top)), max(0, min(rows, bottom))))
        if right > left and bottom > top:
            out.append([left, top, right, bottom])
    return out


def transfer_confirm(*, transfer: Transfer, user, data: dict[str, Any]) -> Transfer:
    """Validate the user's choices and queue the import (see the module docstring)."""
    if transfer.status != Status.AWAITING:
        raise ValidationError(services.MSG_NOT_NOW.format(status=transfer.get_status_display().lower()))
    project = transfer.project
    conf = services.uploader_settings(project=project)
    if conf["script_error"]:
        raise ValidationError(conf["script_error"])
    by_key = {s["key"]: s for s in transfer.inspection.get("sessions", [])}
    chosen = [s for s in data.get("sessions") or [] if isinstance(s, dict)]
    if not chosen:
        raise ValidationError(MSG_NO_SESSION)
    if len(chosen) > 1 and not conf["allow_bulk_upload"]:
        raise ValidationError(MSG_SINGLE_ONLY)
    existing = set(conf["subjects"])
    variable_names = {v["name"] for v in conf["variables"]}
    pixel = data.get("pixel") or {}
    sessions, labels_seen = [], set()
    for item in chosen:
        key = str(item.get("key", ""))
        session = by_key.get(key)
        if session is None:
            raise ValidationError(MSG_UNKNOWN.format(key=key))
        subject, label = str(item.get("subject", "")).strip(), str(item.get("label", "")).strip()
        visit = str(item.get("visit", "") or "").strip()
        if visit and not LABEL_RE.match(visit):
            raise ValidationError(MSG_LABEL.format(what="Visit", value=visit[:80]))
        tracer = str(item.get("tracer", "") or "").strip()
        if not subject:
            raise ValidationError(MSG_SUBJECT)
        if not label:
            raise ValidationError(MSG_NO_LABEL)
        for what, value in (("Subject", subject), ("Session label", label)):
            if not LABEL_RE.match(value):
                raise ValidationError(MSG_LABEL.format(what=what, value=value[:80]))
        if subject not in existing and not project.allow_create_subject:
            raise ValidationError(MSG_NEW_SUBJECT.format(project=project.pk, subject=subject))
        if label in labels_seen:
            raise ValidationError(MSG_DUP_LABEL.format(label=label))
        labels_seen.add(label)
        if tracer and not session["is_pet"]:
            raise ValidationError(MSG_TRACER_NOT_PET)
        if tracer and tracer not in conf["tracers"]:
            raise ValidationError(MSG_TRACER.format(value=tracer[:80]))
        scan_info = {s["id"]: s for s in session["scans"]}
        scans = item.get("scans")
        # Series the import filter will drop are shown as such and not imported (left_out counts them).
        passing = [s for s in scan_info if not scan_info[s].get("will_be_filtered")]
        if not passing:
            raise ValidationError(MSG_ALL_FILTERED.format(key=key))
        scans = passing if scans is None else [str(s) for s in scans]
        if not scans:
            raise ValidationError(MSG_NO_SCANS)
        for scan in scans:
            if scan not in scan_info:
                raise ValidationError(MSG_UNKNOWN_SCAN.format(scan=scan, key=key))
            if scan_info[scan].get("will_be_filtered"):
                raise ValidationError(MSG_FILTERED_SCAN.format(scan=scan, key=key))
        variables = {str(k): str(v)[:1024] for k, v in (item.get("variables") or {}).items()}
        for name in variables:
            if name not in variable_names:
                raise ValidationError(MSG_VARIABLE.format(name=name[:64]))
        templates = {}
        for scan in scans:
            rects = _rectangles(pixel.get(f"{key}/{scan}"), scan_info[scan]["rows"], scan_info[scan]["columns"])
            if rects:
                templates[scan] = rects
        sessions.append({"key": key, "subject": subject, "new_subject": subject not in existing, "label": label,
                         "tracer": tracer, "visit": visit, "scans": scans, "variables": variables,
                         "pixel": templates,
                         "visit_date": str(item.get("visit_date", "") or "").strip()})
    dates_unknown = bool(data.get("dates_unknown"))
    actor = user.get_username()
    if project.require_date and not dates_unknown:
        for s in sessions:
            if not s["visit_date"]:
                raise ValidationError(MSG_DATE_MISSING.format(project=project.pk))
        wrong = [s["key"] for s in sessions if s["visit_date"] != by_key[s["key"]]["study_date"]]
        if wrong:
            _date_refused(transfer=transfer, actor=actor, wrong=wrong, sessions=len(sessions))
    files_total = sum(sc["files"] for s in sessions for sc in by_key[s["key"]]["scans"] if sc["id"] in s["scans"])
    left_out = sum(sc["files"] for s in sessions for sc in by_key[s["key"]]["scans"] if sc.get("will_be_filtered"))
    with transaction.atomic():
        if not Transfer.objects.filter(pk=transfer.pk, status=Status.AWAITING).update(
                status=Status.IMPORTING, choices={"sessions": sessions, "dates_unknown": dates_unknown,
                                                  "filtered": left_out},
                files_total=files_total, files_done=0, updated=timezone.now()):
            raise ValidationError(services.MSG_NOT_NOW.format(status="no longer waiting"))
        if project.require_date and dates_unknown:
            audit_record(actor=actor, action="upload_client_dates_unknown", project_id=project.pk,
                         transfer=str(transfer.pk), sessions=[s["label"] for s in sessions])
        audit_record(actor=actor, action="upload_client_confirm", project_id=project.pk, transfer=str(transfer.pk),
                     sessions=[s["label"] for s in sessions], files=files_total)
        transaction.on_commit(lambda: services._enqueue("upload.client.transfer_import", transfer.pk))
    transfer.refresh_from_db()
    return transfer


def _date_refused(*, transfer: Transfer, actor: str, wrong: list[str], sessions: int) -> None:
    """Count one refused try (a conditional UPDATE, so two tabs cannot both get the last try) and raise."""
    with transaction.atomic():
        row = (Transfer.objects.select_for_update().filter(pk=transfer.pk, status=Status.AWAITING)
               .values_list("date_attempts", flat=True).first())
        if row is None:
            raise ValidationError(services.MSG_NOT_NOW.format(status="no longer waiting"))
        attempt = row + 1
        Transfer.objects.filter(pk=transfer.pk).update(date_attempts=attempt, updated=timezone.now())
        audit_record(actor=actor, action="upload_client_date_refused", project_id=transfer.project_id,
                     transfer=str(transfer.pk), sessions=sessions, wrong_sessions=wrong, attempt=attempt,
                     attempts_allowed=MAX_DATE_ATTEMPTS)
    if attempt >= MAX_DATE_ATTEMPTS:
        services.transfer_fail(transfer_id=transfer.pk, reason=MSG_DATE_WRONG, from_statuses=[Status.AWAITING])
        raise ValidationError(MSG_DATE_WRONG)
    left = MAX_DATE_ATTEMPTS - attempt
    raise VisitDateMismatch(MSG_DATE_RETRY.format(n=len(wrong), left=left, tries="try" if left == 1 else "tries"),
                            wrong=wrong, attempts_left=left)


# ------------------------------------------------------------------ import


def _dataset_prepare(ds) -> None:
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts is not None and ts.is_compressed:
        ds.decompress()  # alterPixels needs uncompressed data; raises when no decoder is available


def transfer_import(*, transfer_id) -> str | None:
    """Run a confirmed transfer (the Celery task calls this). It holds the transfer's job lock while it runs
    (services/joblock.py): a transfer IMPORTING whose lock is free lost its worker, and a redelivered message
    or job recovery resumes it: each file's source is removed only once intake has taken it in, so the files
    still in the work folder are exactly those not imported yet (what a killed run staged is discarded and
    done again). A live import's second message is a no-op."""
    from prearchive.services.joblock import job_lock

    with job_lock("transfer", str(transfer_id)) as got:
        if not got:
            return None
        return _transfer_import(transfer_id=transfer_id)


def _transfer_import(*, transfer_id) -> str | None:
    import shutil

    from prearchive.services.intake import IntakeError, dicom_file_receive
    from upload.services import ImportReport, import_commit

    if not Transfer.objects.filter(pk=transfer_id, status=Status.IMPORTING).update(
            import_started=timezone.now(), updated=timezone.now()):
        return None
    transfer = Transfer.objects.select_related("user", "project").get(pk=transfer_id)
    user, project, work = transfer.user, transfer.project, Path(transfer.work_dir)
    try:
        manifest = manifest_read(work_dir=work)["sessions"]
    except Exception:  # noqa: BLE001 - the work folder is gone: nothing left to import, say so
        logger.warning("transfer %s: its work folder is gone; failed", transfer_id)
        Transfer.objects.filter(pk=transfer_id, status=Status.IMPORTING).update(
            status=Status.FAILED, error=MSG_WORK_GONE, finished=timezone.now(), updated=timezone.now())
        return Status.FAILED
    staging = work / "staging"
    shutil.rmtree(staging, ignore_errors=True)  # a killed run's staged copy: its source is still there
    staging.mkdir(exist_ok=True)
    report = ImportReport(started=transfer.created)
    report.filtered = int(transfer.choices.get("filtered") or 0)  # series left out as "will be filtered"
    done, last, status, error = 0, 0.0, Status.DONE, ""
    scripts = scripts_for(project=project)
    by_key = {s["key"]: s for s in transfer.inspection.get("sessions", [])}
    try:
        for choice in transfer.choices["sessions"]:
            session = by_key[choice["key"]]
            label, subject = choice["label"], choice["subject"]
            if choice["new_subject"]:
                _, created = Subject.objects.get_or_create(project=project, label=subject)
                if created:
                    audit_record(actor=user.get_username(), action="subject_create", project_id=project.pk,
                                 subject_label=subject, via="uploader")
            visit = choice.get("visit", "")
            variables = {**choice["variables"], "project": project.pk, "subject": subject, "session": label,
                         "modalityLabel": session["modality_label"], "visit": visit}  # seed 000: visit
            anonymizer = Anonymizer(scripts=scripts, label=label, variables=variables)
            params = {"PROJECT_ID": project.pk, "SUBJECT_ID": subject, "EXPT_LABEL": label, "SOURCE": "uploader"}
            if visit:
                params["VISIT"] = visit
            for scan_id in choice["scans"]:
                rects = choice["pixel"].get(scan_id)
                blank = pixel_script(rects) if rects else None
                for rel in manifest[choice["key"]]["scans"].get(scan_id, []):
                    if not (work / rel).exists():  # imported (or refused) by an earlier run of this job
                        done += 1
                        continue
                    result = _file_import(work=work, rel=rel, staging=staging, anonymizer=anonymizer, blank=blank,
                                          params=params, user=user, receive=dicom_file_receive)
                    if isinstance(result, str):
                        report.rejected += 1
                        report.skip(f"scan {scan_id}", result)
                    else:
                        report.add(result, f"scan {scan_id}")
                    done += 1
                    if time.monotonic() - last > 0.3:
                        last = time.monotonic()
                        services._touch(transfer_id, files_done=done)
                if rects:
                    audit_record(actor=user.get_username(), action="upload_client_pixel_template",
                                 project_id=project.pk, subject_label=subject, session_label=label, scan=scan_id,
                                 rectangles=rects, rows=_scan(session, scan_id)["rows"],
                                 columns=_scan(session, scan_id)["columns"], transfer=str(transfer_id))
        import_commit(report=report, params={"action": "commit"})
        _tracers_set(report=report, choices=transfer.choices["sessions"])
    except (IntakeError, ScriptProblem) as exc:
        status, error = Status.FAILED, str(exc)
    except Exception as exc:  # noqa: BLE001 - the page shows a reason, never a traceback
        logger.exception("transfer %s: import failed", transfer_id)
        status, error = Status.FAILED, f"The import failed on the server ({type(exc).__name__})."
    summary = report.summary()
    Transfer.objects.filter(pk=transfer_id).update(status=status, error=error, summary=summary, files_done=done,
                                                   finished=timezone.now(), updated=timezone.now())
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    audit_record(actor=user.get_username(), action="upload_client_import", project_id=project.pk,
                 transfer=str(transfer_id), status=status, stored=report.stored, rejected=report.rejected,
                 filtered=report.filtered, sessions=[s["label"] for s in transfer.choices["sessions"]])
    logger.info("transfer %s %s: %d stored, %d refused", transfer_id, status, report.stored, report.rejected)
    return status


def _scan(session: dict[str, Any], scan_id: str) -> dict[str, Any]:
    return next(s for s in session["scans"] if s["id"] == scan_id)


def _file_import(*, work: Path, rel: str, staging: Path, anonymizer: Anonymizer, blank, params, user, receive):
    """One file: scripts, pixels, intake. Returns the IntakeResult, or a reason string when refused here."""

    from anonymization.dicomedit import DicomEditError
    from prearchive.services.headers import header_read

    source = work / rel
    try:
        ds = header_read(source, full=True).dataset  # a Deflated file inflates with a cap, never whole
    except Exception:  # noqa: BLE001 - it was readable at inspection; treat as refused
        source.unlink(missing_ok=True)
        return "the file could not be read"
    try:
        if not anonymizer.apply(ds):
            source.unlink(missing_ok=True)
            return "rejected by the anonymization script"
    except DicomEditError as exc:
        source.unlink(missing_ok=True)
        return MSG_ANON_FAILED.format(error=str(exc).splitlines()[0][:120])
    if blank is not None:
        try:
            _dataset_prepare(ds)
            blank.apply(ds, record=False)
        except Exception as exc:  # noqa: BLE001 - never store a file whose pixels were not cleaned
            source.unlink(missing_ok=True)
            return MSG_PIXEL_FAILED.format(error=str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__)
    tmp = staging / f".{os.getpid()}-{source.name}.tmp"
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    with open(tmp, "wb") as fh:
        fh.write(buf.getvalue())
    echoes = anonymizer.take_echoes()
    result = receive(path=tmp, source="uploader", params=params, prevent_anon=True, user=user)
    source.unlink(missing_ok=True)  # after intake took it: a run killed before this does the file again
    if echoes:
        from prearchive.services.script_state import session_notes_add

        session_notes_add(session_id=result.session_id, origin="uploader", lines=echoes)
    return result


def _tracers_set(*, report, choices) -> None:
    from prearchive.models import PrearchiveSession

    tracers = {c["label"]: c["tracer"] for c in choices if c.get("tracer")}
    if not tracers:
        return
    for session in PrearchiveSession.objects.filter(pk__in=report.session_ids):
        tracer = tracers.get(session.name)
        if tracer:
            PrearchiveSession.objects.filter(pk=session.pk).update(pet_tracer=tracer[:64])
            from prearchive.services.rowdoc import row_document_write_on_commit

            row_document_write_on_commit(session_id=session.pk)


# ------------------------------------------------------------------ the representative frame


MSG_NO_FRAME = "The scan has {total} frame(s); choose one from 1 to {total}."


def frame_locate(*, frames: list[int], frame: int | None) -> tuple[int, int | None]:
    """(file index, frame within that file) of the scan's ``frame``-th frame (1-based, counted over its files
    in instance order); None: the middle frame of the middle file, the representative one."""
    if frame is None:
        return len(frames) // 2, None
    total = sum(frames)
    if not 1 <= frame <= total:
        raise ValidationError(MSG_NO_FRAME.format(total=total))
    for index, count in enumerate(frames):
        if frame <= count:
            return index, frame - 1
        frame -= count
    raise ValidationError(MSG_NO_FRAME.format(total=total))  # unreachable: frame <= total


def frame_png(*, transfer: Transfer, key: str, scan_id: str, frame: int | None = None) -> bytes:
    """A frame of a scan as an 8-bit PNG (for drawing the pixel template): ``frame`` (1-based, over the scan's
    files in instance order), else the middle frame of the middle file. The rectangles drawn on any frame
    apply to every frame of every file of the scan."""
    import numpy as np
    from PIL import Image

    info = manifest_read(work_dir=Path(transfer.work_dir))["sessions"].get(key) or {}
    files = info.get("scans", {}).get(scan_id)
    if not files:
        raise ValidationError("No such scan.")
    counts = (info.get("frames") or {}).get(scan_id) or [1] * len(files)  # older manifests: one per file
    index, within = frame_locate(frames=counts, frame=frame)
    from prearchive.services.headers import header_read

    ds = header_read(services.work_path(transfer, files[index]), full=True).dataset
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        arr = arr[frames // 2 if within is None else min(within, frames - 1)]
    arr = arr.astype("float64")
    if samples == 1:
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else arr * 0
        if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
            arr = 255.0 - arr
        image = Image.fromarray(arr.clip(0, 255).astype(np.uint8), mode="L")
    else:
        image = Image.fromarray(arr.clip(0, 255).astype(np.uint8), mode="RGB")
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
