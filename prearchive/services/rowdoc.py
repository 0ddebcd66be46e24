"""The prearchive row's own document on disk: ``{folder}.json`` beside the session folder (and its
``{folder}.xml``), so that a reload (``PUT /data/prearchive``, ``manage.py reload_prearchive``) rebuilds every
field of a lost row (subject, visit, source, auto-archive, overwrite, tracer, the built document, ...) and not
only what the DICOM headers say.

Written when the session is created (intake), when it is built, and when a field is set on it later (the
uploader's tracer), always after the transaction that changed the row has committed, from the committed row,
with a temporary name and a rename. It holds the row's values only: the files' values after the site script,
never an original identifier the script removed (the row never had one).
"""
from __future__ import annotations

import datetime
import json
import logging
from pathlib import Path
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from prearchive.models import PrearchiveSession

from . import storage

logger = logging.getLogger(__name__)

FORMAT = "xnatlite-prearchive-row/1"
# Where the row is, not what it is: taken from the folder's place in the tree on reload.
_PLACE = {"id", "project", "timestamp", "folder_name"}


class _Encoder(DjangoJSONEncoder):
    """Dates and times to the microsecond (DjangoJSONEncoder keeps milliseconds only)."""

    def default(self, o):
        if isinstance(o, (datetime.datetime, datetime.time)):
            return o.isoformat()
        return super().default(o)


def _fields():
    return [f for f in PrearchiveSession._meta.concrete_fields if f.name not in _PLACE]


def path_for(relative_dir: str) -> Path:
    base = storage.root() / relative_dir
    return base.with_name(base.name + ".json")


def row_document_write(*, session_id: int) -> None:
    """Write the committed row of ``session_id`` to its ``{folder}.json`` (nothing if the row is gone)."""
    session = PrearchiveSession.objects.filter(pk=session_id).first()
    if session is None:
        return
    row = {f.attname: f.value_from_object(session) for f in _fields()}
    data = json.dumps({"format": FORMAT, "row": row}, cls=_Encoder, sort_keys=True).encode("utf-8")
    base = storage.root() / session.relative_dir
    if not base.is_dir():
        return  # no folder (yet, or any more): a document with no folder would be an orphan
    storage.bytes_write_atomic(path_for(session.relative_dir), data)


def row_document_write_on_commit(*, session_id: int) -> None:
    def write() -> None:
        try:
            row_document_write(session_id=session_id)
        except OSError as exc:  # the row is committed; a reload then rebuilds from the headers only
            logger.warning("prearchive session %s: its row document was not written (%s)", session_id,
                           type(exc).__name__)

    transaction.on_commit(write)


def row_document_read(relative_dir: str) -> dict[str, Any] | None:
    """The row values of a session folder's ``{folder}.json`` as model values, or None (none, unreadable)."""
    try:
        doc = json.loads(path_for(relative_dir).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(doc.get("row"), dict):
        return None
    raw = doc["row"]
    values: dict[str, Any] = {}
    for f in _fields():
        if f.attname not in raw:
            continue
        try:
            values[f.attname] = f.to_python(raw[f.attname])
        except Exception:  # noqa: BLE001 - a field that does not parse is rebuilt as a new row would be
            continue
    return values
