"""The DICOM receiver: C-ECHO and C-STORE (every storage SOP class, the common transfer syntaxes).

Thin, per STYLE §6.4: the network side is xnatlite's own upper layer (upload/dul.py); ``handle_store``
hands intake the file as pynetdicom's ``event.encoded_dataset()`` would give it (preamble, file meta, the
dataset's bytes as received; nothing decoded) and maps the outcome to a DIMSE status. It answers Success
only when the file is in the prearchive or was deliberately dropped (a series import filter or the site
script's reject); otherwise a failure status, so the sender keeps the file and can retry. On PostgreSQL the
rows of files for sessions already known are written together within DICOM_RECEIVER_ROW_BATCH_SECONDS,
the session row locked from before the file goes into its folder until they are (prearchive/services/
rowbatch.py).
"""
from __future__ import annotations

import functools
import logging
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from django.conf import settings
from django.db import close_old_connections, connection, connections
from pynetdicom import (ALL_TRANSFER_SYNTAXES, PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION,
                        AllStoragePresentationContexts)
from pynetdicom.sop_class import Verification

from . import dul

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700       # disk or database fault: the sender should retry later
CANNOT_UNDERSTAND = 0xC210      # not decodable, no SOP/Study UID, invalid header
PROCESSING_FAILURE = 0xC211     # refused (e.g. the site anonymization failed: fail closed on PHI)
UNDECODABLE_REASONS = ("not_dicom", "truncated", "missing_uid", "invalid_value")


@dataclass(frozen=True)
class ReceiverConfig:
    """What one listening AE needs. ``receiver`` is the DicomReceiver row (None for the default receiver
    from settings); intake reads its routing expressions and anonymization switch."""

    ae_title: str
    port: int
    whitelist: tuple[str, ...] = ()
    receiver: Any = field(default=None, compare=False)
    signature: tuple = ()

    @classmethod
    def from_receiver(cls, receiver) -> "ReceiverConfig":
        whitelist = tuple(receiver.whitelist_titles) if receiver.whitelist_enabled else ()
        signature = (receiver.ae_title, receiver.port, whitelist, receiver.routing_expressions_enabled,
                     receiver.project_routing_expression, receiver.subject_routing_expression,
                     receiver.session_routing_expression, receiver.anonymization_enabled)
        return cls(receiver.ae_title, receiver.port, whitelist, receiver, signature)

    @classmethod
    def default(cls, *, ae_title: str | None = None, port: int | None = None) -> "ReceiverConfig":
        title = ae_title or settings.DICOM_AE_TITLE
        port = port or settings.DICOM_PORT
        return cls(title, port, (), None, (title, port))


def _status_for(result) -> int:
    from prearchive.services import intake

    if result.status in (intake.STORED, intake.DUPLICATE, intake.FILTERED):
        return SUCCESS
    if result.reason == intake.MSG_SCRIPT_REJECT:
        return SUCCESS  # deliberately dropped by the site script's reject[]
    from prearchive.models import IntakeRejection

    code = (IntakeRejection.objects.filter(sop_instance_uid=result.sop_instance_uid)
            .order_by("-at").values_list("reason_code", flat=True).first()) if result.sop_instance_uid else None
    if code is None or code in UNDECODABLE_REASONS:
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE


_PREAMBLE = b"\x00" * 128 + b"DICM"
_SHORT = struct.Struct("<HH2sH").pack


def _text_element(element: int, vr: bytes, value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii")
    if len(raw) % 2:
        raw += pad
    return _SHORT(2, element, vr, len(raw)) + raw


# (0002,0001) version, then (0002,0012) and (0002,0013): the same for every file.
_META_VERSION = struct.pack("<HH2sHL", 2, 1, b"OB", 0, 2) + b"\x00\x01"
_META_IMPLEMENTATION = (_text_element(0x12, b"UI", PYNETDICOM_IMPLEMENTATION_UID, b"\x00")
                        + _text_element(0x13, b"SH", PYNETDICOM_IMPLEMENTATION_VERSION, b" "))


def file_head(sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str) -> bytes:
    """Preamble, DICM and the file meta group, byte for byte what ``event.encoded_dataset()`` puts in
    front of the dataset (pynetdicom's create_file_meta + encode_file_meta), without building and writing
    a pydicom FileMetaDataset (~0.25 ms a file, a tenth of what intake itself costs)."""
    body = b"".join((_META_VERSION, _text_element(0x02, b"UI", sop_class_uid, b"\x00"),
                     _text_element(0x03, b"UI", sop_instance_uid, b"\x00"),
                     _text_element(0x10, b"UI", transfer_syntax, b"\x00"), _META_IMPLEMENTATION))
    return _PREAMBLE + struct.pack("<HH2sHL", 2, 0, b"UL", 4, len(body)) + body


_local = threading.local()
CONNECTION_CHECK_SECONDS = 1.0


def _connections_refresh() -> None:
    """close_old_connections() (hc smtpd), at most once a second per association thread: with health
    checks on, each call costs a round trip on the next query, which a 1,000-file association feels."""
    if connection.in_atomic_block:
        return
    now = time.monotonic()
    if now - getattr(_local, "checked", 0.0) >= CONNECTION_CHECK_SECONDS:
        close_old_connections()
        _local.checked = now


def handle_store(association: dul.Association, sop_class_uid: str, sop_instance_uid: str, transfer_syntax: str,
                 dataset: Sequence[memoryview], config: ReceiverConfig) -> int:
    """A C-STORE's dataset, as the upper layer received it: intake gets the file that pynetdicom's
    ``event.encoded_dataset()`` would have given (preamble, file meta, the dataset's bytes as received;
    nothing decoded), joined once, and the outcome becomes the DIMSE status."""
    from prearchive.services import rowbatch
    from prearchive.services.intake import IntakeError, dicom_file_receive

    _connections_refresh()
    try:
        data = b"".join((file_head(sop_class_uid, sop_instance_uid, transfer_syntax), *dataset))
    except Exception:  # noqa: BLE001 - UIDs that cannot be a file meta
        logger.warning("C-STORE: the request's UIDs cannot make a file meta")
        return CANNOT_UNDERSTAND
    try:
        # The bytes go straight to intake: written once, at their final place, never read back from disk.
        result = dicom_file_receive(data=data, source="dicom", calling_aet=association.calling_ae,
                                    called_aet=association.called_ae, receiver=config.receiver,
                                    row_writer=rowbatch.writer_get())
    except IntakeError:
        _local.checked = 0.0  # check the connection again before the next file
        return OUT_OF_RESOURCES
    except Exception:  # noqa: BLE001 - never report Success for a file that is not stored
        logger.exception("C-STORE: intake failed")
        return PROCESSING_FAILURE
    return _status_for(result)


def association_end() -> None:
    """The association's thread is ending: close its database connection."""
    if not connection.in_atomic_block:
        connections.close_all()
        _local.checked = 0.0


# Connections and associations (upload/dul.py): a connection waits in the server's one selector thread,
# with no thread of its own, until its first bytes arrive, for at most ACSE_TIMEOUT seconds; at most
# MAX_WAITING wait at once (a new one closes the one waiting longest). MAX_ASSOCIATIONS counts associations
# whose request came: beyond it a request gets A-ASSOCIATE-RJ "local limit exceeded" (transient) at once.
# An association idle for NETWORK_TIMEOUT seconds is aborted. Read on every use (tests change them).
MAX_ASSOCIATIONS = 64
MAX_WAITING = 256
ACSE_TIMEOUT = 10
NETWORK_TIMEOUT = 60

_ABSTRACT_SYNTAXES = frozenset([c.abstract_syntax for c in AllStoragePresentationContexts] + [Verification])
_TRANSFER_SYNTAXES = frozenset(ALL_TRANSFER_SYNTAXES)


def _limits() -> dul.Limits:
    return dul.Limits(max_associations=MAX_ASSOCIATIONS, max_waiting=MAX_WAITING, acse_timeout=ACSE_TIMEOUT,
                      network_timeout=NETWORK_TIMEOUT)


def server_start(config: ReceiverConfig, *, address: str, shared_port: bool = False) -> dul.Server:
    """Start one receiver (non-blocking); returns its server (``.shutdown()``). ``shared_port``: other
    processes serve the same port (SO_REUSEPORT): the kernel spreads the incoming connections over them."""
    policy = dul.Policy(ae_title=config.ae_title, whitelist=config.whitelist,
                        abstract_syntaxes=_ABSTRACT_SYNTAXES, transfer_syntaxes=_TRANSFER_SYNTAXES,
                        implementation_uid=PYNETDICOM_IMPLEMENTATION_UID,
                        implementation_version=PYNETDICOM_IMPLEMENTATION_VERSION, limits=_limits)
    server = dul.Server(address=address, port=config.port, policy=policy, shared_port=shared_port,
                        store=functools.partial(handle_store, config=config), association_end=association_end)
    logger.info("DICOM receiver %s listening on %s:%s", config.ae_title, address, config.port)
    return server


def receiver_configs(*, default: ReceiverConfig | None, only_default: bool = False) -> list[ReceiverConfig]:
    """The default receiver (unless a DicomReceiver uses its port) plus every enabled DicomReceiver; none
    when the site's "Enable DICOM receiver" is off."""
    from xnatlite.selectors import site_config_get

    from .models import DicomReceiver

    if not site_config_get().enable_dicom_receiver:
        return []
    configs = [ReceiverConfig.from_receiver(r) for r in DicomReceiver.objects.filter(enabled=True)]
    if only_default:
        configs = []
    if default is not None and all(c.port != default.port for c in configs):
        configs.insert(0, default)
    return configs
