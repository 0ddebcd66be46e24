"""Intake: the one function every route (C-STORE, compressed upload, REST import, inbox) calls.

``dicom_file_receive`` takes over a temporary file and either stores it in the prearchive (moved or
anonymized into place with a temporary name and a rename) or removes it. It never raises for bad input;
it raises IntakeError only for server-side faults (disk, database, a site script that does not compile),
so that a C-STORE handler can answer a failure status and the sender keeps its data.

Fail closed on PHI: when the site-wide anonymization script is enabled and fails on a file, that file is
not stored at all. It is rejected with a reason, counted on its session (``anon_failed_count``) and listed
as an IntakeRejection; the builder then puts the session in ERROR with that reason, so the admin sees it.
Reasons carry UIDs and counts only; logs carry codes, session numbers and counts, never a UID (before the
site script it is the patient's own).
"""
from __future__ import annotations

import io
import logging
import os
import struct
import threading
import time
from collections import OrderedDict
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator

from django.db import DatabaseError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from prearchive.models import IntakeRejection, PrearchiveFile, PrearchiveSession, UNASSIGNED

from . import adapters, context, dicomwrite, fastheader, fastpath, residual, rowdoc, script_state, storage
from .filenames import stored_file_name
from .headers import HeaderError, file_fields, header_read, label_chars, raw_strings, scan_dir, uid
from .idle import idle_countdown_on_commit

logger = logging.getLogger(__name__)
Status = PrearchiveSession.Status

STORED, FILTERED, REJECTED, DUPLICATE = "stored", "filtered", "rejected", "duplicate"
DEFAULT_SESSION_LABEL = "dicom_upload"
MAX_LABEL = 64
MSG_LABEL_TOO_LONG = "The {what} label is longer than {limit} characters."
MSG_SCRIPT_BROKEN = "The site-wide anonymization script does not compile: {detail}"
MSG_ANON_FAILED = "The site-wide anonymization script failed on this file ({error}); it was not stored."
MSG_SCRIPT_REJECT = "The site-wide anonymization script rejected this file."
MSG_NO_UID = "The file has no {keyword}."
MSG_ROW_NOT_COMMITTED = "The prearchive database did not confirm the file's row; send the file again."


class IntakeError(Exception):
    """A server-side fault: the file was not stored and the sender should try again later."""


@dataclass(frozen=True)
class IntakeResult:
    """``status``: "stored" | "filtered" | "rejected" | "duplicate" (stored, replacing an earlier copy of
    the same SOP instance). ``session`` is loaded from the database when first read."""

    status: str
    session_id: int | None = None
    reason: str = ""
    uri: str = ""
    sop_instance_uid: str = ""

    @property
    def session(self) -> PrearchiveSession | None:
        if self.session_id is None:
            return None
        cached = self.__dict__.get("_session")
        if cached is None:
            cached = PrearchiveSession.objects.filter(pk=self.session_id).first()
            object.__setattr__(self, "_session", cached)
        return cached

    @property
    def ok(self) -> bool:
        """The file is in the prearchive (new, or replacing an earlier copy of the same instance)."""
        return self.status in (STORED, DUPLICATE)


# (project, tag, name) -> (pk, timestamp, folder_name): saves the session look-up per file. Entries are
# only hints: the conditional UPDATE that bumps ``lastmod`` re-checks all of them.
_SESSION_HINTS: "OrderedDict[tuple, tuple[int, str, str]]" = OrderedDict()
_HINTS_MAX = 2048


def _hint_put(key: tuple, value: tuple[int, str, str]) -> None:
    _SESSION_HINTS[key] = value
    _SESSION_HINTS.move_to_end(key)
    while len(_SESSION_HINTS) > _HINTS_MAX:
        _SESSION_HINTS.popitem(last=False)


# Stands for "no temporary file" when the caller hands over bytes; unlinking it is a no-op.
_NO_FILE = Path("/nonexistent/xnatlite-no-temporary-file")


def dicom_file_receive(*, path: Path | None = None, source: str, params: dict[str, str] | None = None,
                       calling_aet: str = "", called_aet: str = "", receiver=None, prevent_anon: bool = False,
                       user=None, data: bytes | None = None, row_writer=None) -> IntakeResult:
    """Take in one DICOM file (see the module docstring). ``params`` are the route's request parameters
    (PROJECT_ID, SUBJECT_ID, EXPT_LABEL, AA, VISIT, SOURCE, prevent_auto_commit, ...).

    The file is either a temporary file at ``path`` (intake moves it into place or deletes it) or, from
    the DICOM receiver, its bytes in ``data``: then nothing is written before the file's final place and
    nothing is read back from disk. ``row_writer`` (the receiver's rowbatch.RowWriter): a file for a
    session already known goes into its folder under the writer's lock on the session, and its row is
    written with others shortly after (see services/rowbatch.py)."""
    if (path is None) == (data is None):
        raise TypeError("dicom_file_receive takes a path or data, not both")
    path = Path(path) if path is not None else _NO_FILE
    try:
        return _receive(path=path, source=source or "", params=dict(params or {}), calling_aet=calling_aet,
                        called_aet=called_aet, receiver=receiver, prevent_anon=prevent_anon, user=user,
                        raw=data, row_writer=row_writer)
    except adapters.ScriptCompileError as exc:
        logger.error("intake refused: the site-wide anonymization script does not compile")
        raise IntakeError(MSG_SCRIPT_BROKEN.format(detail=exc)) from None
    except (OperationalError, InterfaceError, DatabaseError) as exc:
        raise _database_or_storage_fault(exc) from exc
    except OSError as exc:
        if exc.errno is None:  # pydicom decoding a malformed element lazily ("No tag to read ..."): the file's
            return _unreadable(path=path, source=source, exc=exc)
        raise _database_or_storage_fault(exc) from exc
    except UNREADABLE as exc:  # a header value decoded lazily (routing, filters) that cannot be read
        return _unreadable(path=path, source=source, exc=exc)
    finally:
        try:
            if path is not _NO_FILE:
                path.unlink(missing_ok=True)
        except OSError:
            pass


def _database_or_storage_fault(exc: BaseException) -> IntakeError:
    if isinstance(exc, OSError):
        logger.error("intake failed on storage: %s (errno %s)", type(exc).__name__, exc.errno)
        return IntakeError(f"The prearchive storage failed ({exc.strerror or type(exc).__name__}).")
    logger.error("intake failed on the database: %s", type(exc).__name__)
    return IntakeError(f"The prearchive database is not available ({type(exc).__name__}).")


# ------------------------------------------------------------------ many files handed over together

GROUP_FILES = 100  # rows written together, at most
_LOCAL = threading.local()  # .group: the _Group of the dicom_files_receive call running on this thread


def dicom_files_receive(paths: Iterable[Path], *, source: str, params: dict[str, str] | None = None, user=None,
                        prevent_anon: bool = False, group_files: int = GROUP_FILES) -> Iterator[IntakeResult]:
    """``dicom_file_receive`` on each temporary file, in order, yielding each file's result: for files
    handed over together (an archive, a folder) whose sender hears back only at the end.

    Every outcome is the one ``dicom_file_receive`` gives; what differs is the cost. A file for a session
    already known to this process goes into its folder at once, but its row waits: the rows of up to
    ``group_files`` such files are written together, one statement per session (PostgreSQL), instead of one
    round trip a file. A file whose row cannot be written that way (its session was built, moved or
    deleted meanwhile; the instance is there already) then takes the general path, file by file. Results
    come once their rows are written, so in bursts, one a file and in order. On a server fault the files
    whose rows were not written are removed, the results up to the first of them are yielded (so the n-th
    result is always the n-th file's), and IntakeError is raised."""
    group = _Group()
    done: list[IntakeResult | _Pending] = []
    error: IntakeError | None = None
    try:
        for path in paths:
            _LOCAL.group = group
            try:
                done.append(dicom_file_receive(path=path, source=source, params=params, user=user,
                                               prevent_anon=prevent_anon))
            finally:
                _LOCAL.group = None
            if len(group.pending) >= group_files:
                _group_flush(group)
                yield from _results(done)
                done = []
    except IntakeError as exc:
        error = exc
    except BaseException:  # the caller's paths failed, or a bug: what waits is written (or removed) first
        try:
            _group_flush(group)
        except IntakeError:
            pass
        raise
    try:
        _group_flush(group)
    except IntakeError as exc:
        error = error or exc
    yield from _results(done)
    if error is not None:
        raise error


@dataclass
class _Pending:
    pk: int
    key: tuple
    values: dict[str, Any]
    timestamp: str
    folder: str
    now: Any
    sop_uid: str
    relative: str
    row: dict[str, Any]
    placed: Path
    replacing: bool
    result: IntakeResult | None = None
    durable: bool | None = None  # the receiver's writer: None until the row's commit is known to have landed


class _Group:
    """Files of one ``dicom_files_receive`` call already in their session folders, waiting for their rows."""

    def __init__(self) -> None:
        self.pending: list[_Pending] = []
        self._keys: set[tuple[int, str]] = set()

    def accepts(self, pk: int, sop_uid: str) -> bool:
        """False for a second copy of an instance already waiting: the group is written first."""
        return (pk, sop_uid) not in self._keys

    def add(self, pending: _Pending) -> _Pending:
        self.pending.append(pending)
        self._keys.add((pending.pk, pending.sop_uid))
        return pending

    def flush(self) -> None:
        pending, self.pending, self._keys = self.pending, [], set()
        try:
            for item in pending_rows_write(pending):
                pending_store_general(item, keep_file=item.replacing)
        except BaseException:
            for item in pending:  # no row names these files: they must not stay
                if item.result is None and not item.replacing:
                    item.placed.unlink(missing_ok=True)
            raise


def pending_rows_write(pending: list[_Pending]) -> list[_Pending]:
    """The rows of files already in their folders, one statement per session (PostgreSQL, in the caller's
    transaction if any): each written item gets its result; returned are those whose rows could not be
    written that way (the session changed meanwhile, the instance was there already)."""
    by_session: dict[tuple[int, str, str], list[_Pending]] = {}
    for item in pending:
        by_session.setdefault((item.pk, item.timestamp, item.folder), []).append(item)
    left = []
    for (pk, timestamp, folder), items in by_session.items():
        key = items[0].key
        touched, inserted = fastpath.touch_and_insert_many(
            session_id=pk, key=key, timestamp=timestamp, folder=folder, now=max(i.now for i in items),
            rows=[(i.sop_uid, i.row) for i in items])
        uri = _uri(key[0], timestamp, folder)
        for item in items:
            if touched and item.sop_uid in inserted:
                item.result = IntakeResult(STORED, session_id=pk, uri=uri, sop_instance_uid=item.sop_uid)
            else:
                left.append(item)
    return left


def pending_store_general(item: _Pending, *, keep_file: bool) -> None:
    """The general path for a file already in place; ``keep_file``: never remove it, even on a fault
    (its sender was told it is stored)."""
    item.result = _store_general(path=_NO_FILE, data=None, key=item.key, values=item.values, sop_uid=item.sop_uid,
                                 relative=item.relative, row=item.row, now=item.now, placed=item.placed,
                                 replacing=keep_file)


def _group_flush(group: _Group) -> None:
    try:
        group.flush()
    except (OperationalError, InterfaceError, DatabaseError, OSError) as exc:
        raise _database_or_storage_fault(exc) from exc


def _results(done: list) -> Iterator[IntakeResult]:
    """The results in the order of the files, up to the first file that was not stored after a fault: the
    caller may pair the n-th result with its n-th file."""
    for item in done:
        if isinstance(item, _Pending):
            if item.result is None:
                return
            yield item.result
        else:
            yield item


from pydicom.errors import BytesLengthException  # noqa: E402

# pydicom decodes elements when first read: hostile input can fail after the header check.
UNREADABLE = (ValueError, TypeError, KeyError, IndexError, AttributeError, NotImplementedError, OverflowError,
              RecursionError, UnicodeError, struct.error, EOFError, BytesLengthException)
MSG_UNREADABLE = "The DICOM header cannot be read ({error})."


def _unreadable(*, path: Path, source: str, exc: BaseException) -> IntakeResult:
    logger.warning("intake refused a file whose header cannot be read: %s", type(exc).__name__)
    return _reject(path=path, code=IntakeRejection.Reason.INVALID_VALUE,
                   reason=MSG_UNREADABLE.format(error=type(exc).__name__), source=source or "")


def _reject(*, path: Path, code: str, reason: str, source: str, study_uid: str = "", sop_uid: str = "",
            session_id: int | None = None, counters: tuple[str, ...] = ("rejected_count",)) -> IntakeResult:
    path.unlink(missing_ok=True)
    with transaction.atomic():
        IntakeRejection.objects.create(source=source[:64], reason_code=code, reason=reason,
                                       study_instance_uid=study_uid, sop_instance_uid=sop_uid,
                                       session_id=session_id)
        uri = ""
        if session_id is not None:
            PrearchiveSession.objects.filter(pk=session_id).update(**{c: F(c) + 1 for c in counters})
            session = PrearchiveSession.objects.filter(pk=session_id).first()
            uri = session.uri if session else ""
    # No UIDs in the log: before the site script they are the patient's own identifiers (PHI).
    logger.info("intake rejected a file: %s (session %s)", code, session_id if session_id is not None else "-")
    return IntakeResult(REJECTED, session_id=session_id, reason=reason, uri=uri, sop_instance_uid=sop_uid)


def _project_resolver(snap, user):
    def resolve(name: str) -> str | None:
        project_id = snap.resolve(name)
        if project_id is None or user is None:
            return project_id
        from xnatlite.permissions import can_upload

        return project_id if can_upload(user, project_id) else None

    return resolve


def _overwrite_param(value: Any) -> str:
    """XNAT's import ``overwrite``: append or delete; anything else (none, blank) leaves it to the project."""
    value = str(value or "").strip().lower()
    return value if value in ("append", "delete") else ""


def _truthy(value: Any) -> bool:
    return str(value or "").strip().lower() in ("true", "t", "1", "yes")


def _auto_archive_code(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return 4 if value else 0
    if isinstance(value, int):
        return value
    text = str(value).strip().lower()
    if text in ("t", "true"):
        return 4
    if text in ("f", "false"):
        return 0
    return int(text) if text.isdigit() else None


def series_filters_for(*, project_id: str | None, snap=None) -> list[tuple[str, str]]:
    """The series import filters a file routed to ``project_id`` goes through, in order: the site's, then the
    project's; (mode, text) pairs for :func:`series_filters_evaluate`. The uploader's review uses the same
    pair to show which series will be filtered before anything is imported."""
    snap = snap or context.snapshot()
    filters = [snap.site_filter] if snap.site_filter else []
    project = snap.projects.get(project_id) if project_id is not None else None
    if project is not None and project.filter_enabled and project.filter_text.strip():
        filters.append((project.filter_mode, project.filter_text))
    return filters


def series_filters_header_tags(filters: list[tuple[str, str]]) -> set:
    """The header tags ``filters`` read (to add to a header-only read)."""
    tags: set = set()
    for mode, text in filters:
        tags.update(adapters.filter_header_tags(mode, text))
    return tags


def series_filters_evaluate(*, filters: list[tuple[str, str]], dataset) -> tuple[bool, str, str]:
    """(accepted, reason, mapped modality) of ``dataset`` through ``filters``: the first that refuses wins."""
    mapped_modality = ""
    for mode, text in filters:
        accepted, reason, modality = adapters.filter_evaluate(mode=mode, text=text, dataset=dataset)
        if not accepted:
            return False, reason or "Filtered by a series import filter.", ""
        mapped_modality = modality or mapped_modality
    return True, "", mapped_modality


def _receive(*, path: Path, source: str, params: dict[str, str], calling_aet: str, called_aet: str, receiver,
             prevent_anon: bool, user, raw: bytes | None = None, row_writer=None) -> IntakeResult:
    snap = context.snapshot()
    prevent_anon = prevent_anon or _truthy(params.get("prevent_anon"))
    anonymize = (snap.anon_enabled and not prevent_anon
                 and getattr(receiver, "anonymization_enabled", True) is not False)
    script = adapters.script_get(snap.anon_script) if anonymize else None

    site_filter = snap.site_filter
    extra = set(adapters.routing_tags(receiver))
    extra.update(residual.HEADER_TAGS)  # what the residual-PHI check remembers (as keyed hashes)
    if site_filter:
        extra.update(adapters.filter_header_tags(*site_filter))

    # 1. The header (all of the file when the site script will run on it).
    try:
        # The site script edits the header only (dicomwrite): read up to the pixel data, keep its bytes.
        header_only = anonymize and dicomwrite.script_is_header_only(snap.anon_script)
        header = None
        if header_only or not anonymize:  # the plain file without pydicom's reader (None: anything else)
            header = fastheader.header_read(None if raw is not None else path, extra_tags=extra, raw=raw,
                                            all_tags=header_only)
        if header is None:
            header = header_read(None if raw is not None else path, extra_tags=extra,
                                 full=anonymize and not header_only, all_tags=header_only, raw=raw,
                                 inflate_max=snap.inflate_max)
        file_bytes = None
        if header_only:
            file_bytes = raw if raw is not None else path.read_bytes()
            length = dicomwrite.dataset_pixel_length(header.dataset, file_bytes, header.end)
            if length is None:  # another layout: the whole file, as before
                file_bytes = None
                header = header_read(None if raw is not None else path, full=True, raw=raw,
                                     inflate_max=snap.inflate_max)
            else:
                as_read = dicomwrite.snapshot(header.dataset)
                dicomwrite.pixel_length_check(header.dataset, length)
        ds = header.dataset
        study_uid, sop_uid = uid(ds, "StudyInstanceUID"), uid(ds, "SOPInstanceUID")
        series_uid = uid(ds, "SeriesInstanceUID")
    except HeaderError as exc:
        return _reject(path=path, code=exc.code, reason=exc.message, source=source)
    # With the site script on, the original UIDs are never stored nor logged (rejections name none).
    shown = {"study_uid": study_uid, "sop_uid": sop_uid} if script is None else {}
    for keyword, value in (("StudyInstanceUID", study_uid), ("SOPInstanceUID", sop_uid)):
        if not value:
            return _reject(path=path, code=IntakeRejection.Reason.MISSING_UID,
                           reason=MSG_NO_UID.format(keyword=keyword), source=source, **shown)

    # 2. Project, subject and session.
    routed = adapters.route(dataset=ds, params=params, receiver=receiver, resolve_project=_project_resolver(snap, user))
    project_id = routed.project or None
    subject = label_chars(routed.subject or "")
    label = label_chars(routed.session or "") or DEFAULT_SESSION_LABEL
    for what, value in (("subject", subject), ("session", label)):
        if len(value) > MAX_LABEL:
            return _reject(path=path, code=IntakeRejection.Reason.INVALID_VALUE,
                           reason=MSG_LABEL_TOO_LONG.format(what=what, limit=MAX_LABEL), source=source,
                           **shown)
    code = _auto_archive_code(getattr(routed, "auto_archive", None))
    if project_id is None:
        code = None  # Unassigned sessions are never auto-archived
    session_values = {
        "subject": subject, "autoarchive": code, "prevent_anon": prevent_anon,
        "prevent_auto_commit": _truthy(params.get("prevent_auto_commit")),
        "source": (params.get("SOURCE") or source)[:64], "visit": label_chars(params.get("VISIT", ""))[:64],
        "protocol": label_chars(params.get("PROTOCOL", ""))[:64], "timezone": params.get("TIMEZONE", "")[:64],
        "calling_aet": (calling_aet or "")[:16], "called_aet": (called_aet or "")[:16],
        "overwrite": _overwrite_param(params.get("overwrite")),
    }
    key = (project_id, study_uid, label)
    state = None
    if script is not None:
        # Before the script, the session is known only by a keyed hash of its original study: files the
        # script never runs on (filtered, failed) are counted on the session its other files went to, or
        # on one tagged with that hash; the session of a stored file is keyed by its values after the script.
        state = script_state.site_context(study_uid=study_uid, allow_get_url=snap.allow_get_url)
        key = (project_id, state.session_tag(project_id=project_id, label=label), label)

    # 3. Series import filters: the site's, then the project's.
    accepted, reason, mapped_modality = series_filters_evaluate(
        filters=series_filters_for(project_id=project_id, snap=snap), dataset=ds)
    if not accepted:
        path.unlink(missing_ok=True)
        logger.info("intake filtered a file (project %s)", project_id or "-")
        return _filtered(key=key, source=source, shown=shown, reason=reason)

    # 4. The site-wide anonymization script (fail closed).
    data: bytes | None = raw  # bytes to write (from the receiver, or as the script left them); None: move path
    echoes: list[str] = []
    # Keyed hashes of the identifying values as the file arrived (services/residual.py), never the values.
    # (Without a site script every UID stays in the file's row: not hashed at all.)
    prints = residual.fingerprints_of(ds, uids=script is not None)
    arrived = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": series_uid, "SOPInstanceUID": sop_uid}
    if script is not None:
        variables = {"project": project_id or UNASSIGNED, "subject": subject, "session": label,
                     "modalityLabel": mapped_modality or _modality(ds)}
        try:
            before = dicomwrite.snapshot(ds) if file_bytes is not None else None
            rejected = adapters.script_apply(script, ds, variables=variables, run=state.run)
            if not rejected and file_bytes is not None:
                data = dicomwrite.encode(ds, file_bytes, header.end, original=as_read[0], before=before[0],
                                         original_meta=as_read[1], before_meta=before[1])
                if data is None:  # the script changed what the header-only write relies on
                    rejected, ds, data = _script_rerun(script, state, path, raw, variables, snap.inflate_max)
            elif not rejected:
                data = _encode(ds)
            for _attempt in range(3):
                if rejected or state.commit():
                    break
                # Another process mapped one of this file's values first: run it again with that UID.
                rejected, ds, data = _script_rerun(script, state, path, raw, variables, snap.inflate_max)
            else:
                raise IntakeError("The session's script memos could not be agreed on; try again.")
            echoes = state.take_echoes()
        except IntakeError:
            state.discard()
            raise
        except Exception as exc:  # noqa: BLE001 - any failure keeps the file out of the prearchive
            state.discard()
            session = _session_get_or_create(key=key, values=session_values)
            script_state.session_notes_add(session_id=session.pk, origin="site script", lines=state.take_echoes())
            return _reject(path=path, code=IntakeRejection.Reason.ANON_FAILED,
                           reason=MSG_ANON_FAILED.format(error=type(exc).__name__), source=source,
                           session_id=session.pk, counters=("rejected_count", "anon_failed_count"))
        if rejected:
            session = _session_get_or_create(key=key, values=session_values)
            script_state.session_notes_add(session_id=session.pk, origin="site script", lines=echoes)
            return _reject(path=path, code=IntakeRejection.Reason.SCRIPT_REJECT, reason=MSG_SCRIPT_REJECT,
                           source=source, session_id=session.pk)
        # The values the file carries now: its session, row and name. What the script removed is stood in
        # for by a keyed hash of the original (grouping only), never by the original.
        study_uid = uid(ds, "StudyInstanceUID") or script_state.stand_in_uid(study_uid, what="study")
        sop_uid = uid(ds, "SOPInstanceUID") or script_state.stand_in_uid(sop_uid, what="instance")
        series_uid = uid(ds, "SeriesInstanceUID")
        key = (project_id, study_uid, label)
        state.session_tag_remember(project_id=project_id, label=label, tag=study_uid)
    for keyword, value in arrived.items():  # a UID the file still carries is in its row: not hashed twice
        if script is None or uid(ds, keyword) == value:
            prints.pop(keyword, None)

    # 5. Into place, and the rows.
    fields = file_fields(ds)
    if mapped_modality:
        fields["modality"] = mapped_modality[:16]
    fields.update(study_instance_uid=uid(ds, "StudyInstanceUID") or ("" if script is not None else study_uid),
                  series_instance_uid=series_uid)
    scan_id = scan_dir(fields["series_number"], series_uid)
    relative = storage.scan_file_relative(
        scan_id, stored_file_name(ds, template=snap.file_name_template, sop_instance_uid=sop_uid))
    size = len(data) if data is not None else header.size
    result = _store(path=path, data=data, key=key, values=session_values, sop_uid=sop_uid, scan_id=scan_id,
                    relative=relative, size=size, fields=fields, row_writer=row_writer)
    # A file handed over with others (_Pending) is already in its session's folder; its row follows.
    session_id = result.pk if isinstance(result, _Pending) else (result.session_id if result.ok else None)
    residual.fingerprints_record(session_id=session_id, prints=prints)
    if echoes:
        script_state.session_notes_add(session_id=session_id, origin="site script", lines=echoes)
    return result


def _modality(ds) -> str:
    """``str(ds.get("Modality", "") or "")``, from the raw bytes when the value is a plain single one."""
    values = raw_strings(ds, "Modality")
    if values is not None and len(values) <= 1:
        return values[0] if values else ""
    return str(ds.get("Modality", "") or "")


def _script_rerun(script, state, path: Path, raw: bytes | None, variables: dict[str, str], inflate_max: int):
    """The site script once more on the file as received, read whole: (rejected, dataset, bytes)."""
    state.discard()
    state.take_echoes()
    ds = header_read(None if raw is not None else path, full=True, raw=raw, inflate_max=inflate_max).dataset
    rejected = adapters.script_apply(script, ds, variables=variables, run=state.run)
    return rejected, ds, (None if rejected else _encode(ds))


def _encode(ds) -> bytes:
    """The anonymized dataset as a DICOM file, in memory (written once, atomically, by _store)."""
    buf = io.BytesIO()
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" not in meta:
        from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

        meta.TransferSyntaxUID = ImplicitVRLittleEndian if ds.original_encoding[0] else ExplicitVRLittleEndian
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _session_get_or_create(*, key: tuple, values: dict[str, Any]) -> PrearchiveSession:
    project_id, tag, name = key
    session = PrearchiveSession.objects.filter(project_id=project_id, tag=tag, name=name).first()
    if session is not None:
        return session
    now = timezone.now()
    timestamp = storage.timestamp_now()
    for attempt in range(4):
        folder = name if attempt == 0 else f"{name}_{attempt}"
        try:
            with transaction.atomic():
                session = PrearchiveSession.objects.create(
                    project_id=project_id, tag=tag, name=name, timestamp=timestamp, folder_name=folder,
                    status=Status.RECEIVING, lastmod=now, uploaded=now, **values,
                )
        except IntegrityError:
            existing = PrearchiveSession.objects.filter(project_id=project_id, tag=tag, name=name).first()
            if existing is not None:
                return existing
            continue
        logger.info("prearchive session %s created in project %s", session.pk, project_id or "-")
        rowdoc.row_document_write_on_commit(session_id=session.pk)
        idle_countdown_on_commit(session.pk)
        if values.get("source") == "dicom":
            _receipt_audit_on_commit(session)
        return session
    raise IntakeError("Could not name a new prearchive folder: too many sessions with the same label.")


def _receipt_audit_on_commit(session: PrearchiveSession) -> None:
    """One audit event per session the DICOM receiver starts (never one per file): labels and AE titles."""
    from xnatlite.services import audit_record

    def record(session=session) -> None:
        audit_record(actor="", action="prearchive_receive", project_id=session.project_id or "",
                     subject_label=session.subject, session_label=session.name,
                     calling_aet=session.calling_aet, called_aet=session.called_aet)

    transaction.on_commit(record)


def _filtered(*, key: tuple, source: str, shown: dict[str, str], reason: str) -> IntakeResult:
    """A file a series import filter dropped never makes a prearchive session (seed 002: filtered series are
    not visible there). It is counted on the study's session when one exists, else as an intake rejection
    (reason "filtered"), where admins see what intake refused."""
    project_id, tag, name = key
    session = PrearchiveSession.objects.filter(project_id=project_id, tag=tag, name=name).first()
    if session is not None:
        PrearchiveSession.objects.filter(pk=session.pk).update(filtered_count=F("filtered_count") + 1)
        return IntakeResult(FILTERED, session_id=session.pk, uri=session.uri,
                            sop_instance_uid=shown.get("sop_uid", ""), reason=reason)
    # ``shown``: the original UIDs only when no site script runs (issue 14: never stored where it changes them)
    IntakeRejection.objects.create(source=source[:64], reason_code=IntakeRejection.Reason.FILTERED,
                                   reason=reason[:1000], study_instance_uid=shown.get("study_uid", ""),
                                   sop_instance_uid=shown.get("sop_uid", ""))
    return IntakeResult(FILTERED, sop_instance_uid=shown.get("sop_uid", ""), reason=reason)


def _session_touch(*, key: tuple, values: dict[str, Any], now) -> tuple[int, str]:
    """Inside the caller's transaction: make sure the session exists and is receiving, bump ``lastmod``
    and hold its row lock until commit. Returns (pk, relative folder)."""
    project_id, tag, name = key
    hint = _SESSION_HINTS.get(key)
    if hint is not None:
        pk, timestamp, folder = hint
        if PrearchiveSession.objects.filter(
            pk=pk, project_id=project_id, tag=tag, name=name, timestamp=timestamp, folder_name=folder,
            status__in=PrearchiveSession.RECEIVING_STATUSES,
        ).update(lastmod=now):
            return pk, _relative_dir(project_id, timestamp, folder)
    session = _session_get_or_create(key=key, values=values)
    session = PrearchiveSession.objects.select_for_update().get(pk=session.pk)
    if session.status in PrearchiveSession.RECEIVING_STATUSES:
        PrearchiveSession.objects.filter(pk=session.pk).update(lastmod=now)
    else:
        # reference/xnat.md §7: during an operation -> RECEIVING_INTERRUPT, otherwise back to RECEIVING.
        new = (Status.RECEIVING_INTERRUPT if session.status in PrearchiveSession.INTERRUPTIBLE_OPERATIONS
               else Status.RECEIVING)
        PrearchiveSession.objects.filter(pk=session.pk, status=session.status).update(
            status=new, lastmod=now, **({"error_message": ""} if new == Status.RECEIVING else {}))
        logger.info("prearchive session %s: late file, %s -> %s", session.pk, session.status, new)
        if new == Status.RECEIVING:
            idle_countdown_on_commit(session.pk)
    _hint_put(key, (session.pk, session.timestamp, session.folder_name))
    return session.pk, session.relative_dir


def _relative_dir(project_id: str | None, timestamp: str, folder: str) -> str:
    return f"{project_id}/{timestamp}/{folder}" if project_id else f"{timestamp}/{folder}"


def _place(path: Path, data: bytes | None, dest: Path) -> None:
    if data is not None:
        storage.bytes_write_atomic(dest, data)
        if path is not _NO_FILE:
            path.unlink(missing_ok=True)
    else:
        storage.file_move_atomic(path, dest)


def _store(*, path: Path, data: bytes | None, key: tuple, values: dict[str, Any], sop_uid: str, scan_id: str,
           relative: str, size: int, fields: dict[str, Any], row_writer=None) -> IntakeResult:
    now = timezone.now()
    row = dict(fields, scan_id=scan_id, relative_path=relative, size=size, received=now)
    placed: Path | None = None
    replacing = False
    hint = _SESSION_HINTS.get(key)
    if hint is not None and fastpath.available():
        pk, timestamp, folder_name = hint
        group = getattr(_LOCAL, "group", None)
        if group is not None and not group.accepts(pk, sop_uid):
            group.flush()  # another copy of this instance waits: its row first, then this one replaces it
        placed = storage.session_dir(_relative_dir(key[0], timestamp, folder_name)) / relative
        # Every file that could use the writer asks (alone() also counts the associations), bytes or not.
        lone = row_writer is not None and group is None and not connection.in_atomic_block and row_writer.alone()
        if lone and data is not None:
            stored = _store_alone(data=data, key=key, pk=pk, timestamp=timestamp, folder=folder_name,
                                  now=now, sop_uid=sop_uid, row=row, placed=placed)
            if stored is not None:
                return stored
            # Nothing placed: the general path (the session changed, or another copy is there).
            return _store_general(path=path, data=data, key=key, values=values, sop_uid=sop_uid,
                                  relative=relative, row=row, now=now, placed=None, replacing=False)
        # The receiver's writer: the session's row is locked until the writer commits this file's row.
        pin = (row_writer.pinned(pk=pk, key=key, timestamp=timestamp, folder=folder_name, sop_uid=sop_uid, now=now)
               if row_writer is not None and group is None else nullcontext(False))
        waiting: _Pending | None = None
        with pin as pinned:
            replacing = placed.exists()
            _place(path, data, placed)
            if pinned or group is not None:  # the row waits, written with others
                waiting = _Pending(pk=pk, key=key, values=values, timestamp=timestamp, folder=folder_name, now=now,
                                   sop_uid=sop_uid, relative=relative, row=row, placed=placed, replacing=replacing)
                if group is not None:
                    return group.add(waiting)
                row_writer.add(waiting)
        if waiting is not None:  # the receiver answers only once the row is committed (group commit)
            if row_writer.wait(waiting) and waiting.result is not None:
                return waiting.result
            logger.error("intake: a file's row was not committed in time; its sender gets a failure status")
            raise IntakeError(MSG_ROW_NOT_COMMITTED)
        try:
            touched, inserted = fastpath.touch_and_insert(session_id=pk, key=key, timestamp=timestamp,
                                                          folder=folder_name, now=now, sop_uid=sop_uid, row=row)
        except BaseException:
            if not replacing:  # no row will name it: never leave an orphan file
                placed.unlink(missing_ok=True)
            raise
        if touched and inserted:
            return IntakeResult(STORED, session_id=pk, uri=_uri(key[0], timestamp, folder_name),
                                sop_instance_uid=sop_uid)
    return _store_general(path=path, data=data, key=key, values=values, sop_uid=sop_uid, relative=relative,
                          row=row, now=now, placed=placed, replacing=replacing)


# Sessions whose ``lastmod`` this process moved lately (pk -> monotonic time of that commit), and for how long
# such a bump lets an own-transaction file take the session's row in share mode instead (see _store_alone).
_BUMPED: dict[int, float] = {}
_SHARE_WINDOW = [0.0, -1.0]  # [seconds, when computed]


def _share_window(tick: float) -> float:
    """At most 1 s, and at most a twentieth of the Session Idle Time (tests run it in seconds), read at
    most once a second: a file that does not move ``lastmod`` leaves it at most this much behind."""
    if tick - _SHARE_WINDOW[1] >= 1.0:
        from .idle import idle_seconds

        _SHARE_WINDOW[:] = [min(1.0, idle_seconds() / 20), tick]
    return _SHARE_WINDOW[0]


def _store_alone(*, data: bytes, key: tuple, pk: int, timestamp: str, folder: str, now,
                 sop_uid: str, row: dict[str, Any], placed: Path) -> IntakeResult | None:
    """A file whose association writes its own rows (rowbatch.RowWriter.alone): the session's row locked
    (in share mode while this process moved its ``lastmod`` within ``_share_window``, else exclusively,
    moving it), the file linked into place under its name, its row inserted, COMMIT, all in this thread's one
    transaction, so a job claiming the session at any moment waits for the commit and then sees the file and
    its row (or, claimed first, this file goes the general way). None when nothing was placed and the general path must decide: the session is not the one
    hinted or not receiving, or a file of that name (another copy of the instance) is there already.

    Failures: before COMMIT, the transaction is rolled back and the new file removed (nothing of it stays).
    A failed COMMIT has an unknown outcome (the connection may have dropped after the server committed), so
    the file stays: a committed row never names a missing file, and a file without a row is adopted by
    builds and start-up recovery (reload.py), or replaced by the sender's resend. No Success either way."""
    tick = time.monotonic()
    share = tick - _BUMPED.get(pk, float("-inf")) < _share_window(tick)
    cursor = fastpath.session_lock(session_id=pk, key=key, timestamp=timestamp, folder=folder, now=now,
                                   share=share)
    if cursor is None:
        return None
    new_file = committing = False
    try:
        try:  # never over a file of that name (another copy of the instance: the general path replaces it)
            storage.bytes_write_atomic(placed, data, replace=False)
        except FileExistsError:
            fastpath.transaction_end(cursor, commit=False)
            return None
        new_file = True  # ours alone: removing it on failure removes nobody else's file
        if not fastpath.row_insert(cursor, session_id=pk, sop_uid=sop_uid, row=row):
            # The instance has a row naming another file (another scan folder): the general path replaces it.
            fastpath.transaction_end(cursor, commit=False)
            placed.unlink(missing_ok=True)
            return None
        committing = True
        fastpath.transaction_end(cursor, commit=True)
        if not share:
            _BUMPED[pk] = tick
    except BaseException:
        fastpath.transaction_end(cursor, commit=False)
        if new_file and not committing:
            placed.unlink(missing_ok=True)
        raise
    return IntakeResult(STORED, session_id=pk, uri=_uri(key[0], timestamp, folder), sop_instance_uid=sop_uid)


def _uri(project_id: str | None, timestamp: str, folder_name: str) -> str:
    return f"/data/prearchive/projects/{project_id or UNASSIGNED}/{timestamp}/{folder_name}"


def _store_general(*, path: Path, data: bytes | None, key: tuple, values: dict[str, Any], sop_uid: str,
                   relative: str, row: dict[str, Any], now, placed: Path | None,
                   replacing: bool) -> IntakeResult:
    """The session found (or made, or reopened) under its row lock, the file put (or moved) into its folder
    and its row written, in one transaction. ``placed``: where the fast path already put the file."""
    old_path = None
    new_file: Path | None = placed if placed is not None and not replacing else None
    try:
        with transaction.atomic():
            session_id, session_rel = _session_touch(key=key, values=values, now=now)
            folder = storage.session_dir(session_rel)
            dest = folder / relative
            if placed is None:
                if not dest.exists():
                    new_file = dest
                _place(path, data, dest)
            elif placed != dest:  # the hinted folder was not the session's any more
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(placed, dest)
                new_file = dest if new_file is not None else None
            if not _file_insert(session_id=session_id, sop_uid=sop_uid, row=row):
                old_path = (PrearchiveFile.objects.filter(session_id=session_id, sop_instance_uid=sop_uid)
                            .values_list("relative_path", flat=True).first())
                PrearchiveFile.objects.filter(session_id=session_id, sop_instance_uid=sop_uid).update(**row)
    except BaseException:
        # Also when COMMIT itself fails (the database went away): a file no committed row names would be
        # an orphan. (If the commit did land, the sender, told to retry, replaces it.)
        if new_file is not None and old_path is None:
            new_file.unlink(missing_ok=True)
        raise
    if old_path is not None and old_path != relative:  # the earlier copy sat in another scan folder
        (folder / old_path).unlink(missing_ok=True)
    timestamp, folder_name = session_rel.rsplit("/", 2)[-2:]
    return IntakeResult(DUPLICATE if old_path is not None else STORED, session_id=session_id,
                        uri=_uri(key[0], timestamp, folder_name), sop_instance_uid=sop_uid)


_INSERT_SQL: dict[str, tuple[str, list]] = {}


def _file_insert(*, session_id: int, sop_uid: str, row: dict[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING in one statement: True if the row is new, False if this SOP
    instance was already in the session (the caller then replaces it)."""
    vendor = connection.vendor
    if vendor not in _INSERT_SQL:
        fields = [f for f in PrearchiveFile._meta.concrete_fields if not f.primary_key]
        quote = connection.ops.quote_name
        columns = ", ".join(quote(f.column) for f in fields)
        marks = ", ".join(["%s"] * len(fields))
        sql = (f"INSERT INTO {quote(PrearchiveFile._meta.db_table)} ({columns}) VALUES ({marks}) "
               f"ON CONFLICT ({quote('session_id')}, {quote('sop_instance_uid')}) DO NOTHING")
        _INSERT_SQL[vendor] = (sql, fields)
    sql, fields = _INSERT_SQL[vendor]
    values = dict(row, session_id=session_id, sop_instance_uid=sop_uid)
    params = [f.get_db_prep_save(values.get(f.attname, f.get_default()), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount == 1
