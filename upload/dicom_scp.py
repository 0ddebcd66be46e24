"""The DICOM receiver: C-ECHO and C-STORE (every storage SOP class, the common transfer syntaxes).

Thin, per STYLE §6.4: ``handle_store`` hands intake the file as pynetdicom's ``event.encoded_dataset()``
would give it (preamble, file meta, the dataset's bytes as received; nothing decoded) and maps the outcome
to a DIMSE status. It answers Success only when the file is in the prearchive or was deliberately dropped
(a series import filter or the site script's reject); otherwise a failure status, so the sender keeps the
file and can retry. On PostgreSQL the
rows of files for sessions already known are written together within DICOM_RECEIVER_ROW_BATCH_SECONDS,
the session row locked from before the file goes into its folder until they are (prearchive/services/
rowbatch.py).
"""
from __future__ import annotations

import logging
import queue
import selectors
import socket
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection, connections
from pynetdicom import (ALL_TRANSFER_SYNTAXES, AE, PYNETDICOM_IMPLEMENTATION_UID, PYNETDICOM_IMPLEMENTATION_VERSION,
                        AllStoragePresentationContexts, evt)
from pynetdicom.sop_class import Verification
from pynetdicom.transport import ThreadedAssociationServer

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


def encoded_file(event) -> bytes:
    """``event.encoded_dataset()``, with the file meta from ``file_head`` and one copy of the dataset."""
    request = event.request
    head = file_head(request.AffectedSOPClassUID, request.AffectedSOPInstanceUID, event.context.transfer_syntax)
    with request.DataSet.getbuffer() as dataset:
        return b"".join((head, dataset))


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


def handle_store(event, config: ReceiverConfig) -> int:
    """EVT_C_STORE."""
    from prearchive.services import rowbatch
    from prearchive.services.intake import IntakeError, dicom_file_receive

    _connections_refresh()
    try:
        data = encoded_file(event)
    except Exception:  # noqa: BLE001 - a dataset pynetdicom cannot hand over
        logger.warning("C-STORE: the dataset could not be read from the association")
        return CANNOT_UNDERSTAND
    assoc = event.assoc
    try:
        # The bytes go straight to intake: written once, at their final place, never read back from disk.
        result = dicom_file_receive(data=data, source="dicom", calling_aet=assoc.requestor.ae_title.strip(),
                                    called_aet=assoc.acceptor.ae_title.strip(), receiver=config.receiver,
                                    row_writer=rowbatch.writer_get())
    except IntakeError:
        _local.checked = 0.0  # check the connection again before the next file
        return OUT_OF_RESOURCES
    except Exception:  # noqa: BLE001 - never report Success for a file that is not stored
        logger.exception("C-STORE: intake failed")
        return PROCESSING_FAILURE
    return _status_for(result)


def handle_echo(event) -> int:
    return SUCCESS


def handle_conn_open(event) -> None:
    """Nagle off: every C-STORE response goes out at once (TESTING.md: ~20 files/s otherwise)."""
    try:
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError):
        pass


def handle_assoc_end(event) -> None:
    """The association's thread is ending: close its database connection."""
    if not connection.in_atomic_block:
        connections.close_all()
        _local.checked = 0.0


# Connections and associations. pynetdicom gives every accepted connection an association thread and a DUL
# thread that polls its socket about every millisecond, and counts it against its association limit, whether
# or not the peer ever sends a request: 70 idle sockets took the slots and, through the interpreter lock, the
# CPU of real senders. Here a connection waits in GatedServer's one selector thread, with no thread of its
# own, until its first bytes arrive (then pynetdicom takes it), for at most ACSE_TIMEOUT seconds; at most
# MAX_WAITING wait at once (a new one closes the one waiting longest). MAX_ASSOCIATIONS counts associations
# whose request came (AssociationLimit): beyond it a request gets A-ASSOCIATE-RJ "local limit exceeded"
# (transient) at once. An association idle for NETWORK_TIMEOUT seconds is aborted.
MAX_ASSOCIATIONS = 64
MAX_WAITING = 256
ACSE_TIMEOUT = 10
NETWORK_TIMEOUT = 60
DIMSE_TIMEOUT = 60


class AssociationLimit:
    """At most ``limit`` associations at once among those that sent their request (one receiver)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.lock = threading.Lock()
        self.working: set[int] = set()

    def requested(self, event) -> None:
        with self.lock:
            if len(self.working) < self.limit:
                self.working.add(id(event.assoc))
                return
        logger.warning("DICOM receiver: %d associations at once; one more refused (local limit)", self.limit)
        event.assoc.acse.send_reject(0x02, 0x03, 0x02)  # transient, service provider, local limit exceeded
        event.assoc.kill()

    def ended(self, event) -> None:
        with self.lock:
            self.working.discard(id(event.assoc))


class GatedServer(ThreadedAssociationServer):
    """pynetdicom's threaded server (made through ``AE.make_server``), with a longer listen queue and
    accepted connections held in one selector until they send something (see above)."""

    request_queue_size = 128

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._incoming: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting: OrderedDict = OrderedDict()  # socket -> (client address, deadline)
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._gate_stop = threading.Event()
        self._gate = threading.Thread(target=self._gate_run, name="DicomGate", daemon=True)
        self._gate.start()

    def process_request(self, request, client_address) -> None:  # socketserver's hook, in the accept loop
        self._incoming.put((request, client_address))
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass

    def _gate_run(self) -> None:
        while not self._gate_stop.is_set():
            deadline = next(iter(self._waiting.values()))[1] if self._waiting else None
            timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
            for key, _ in self._selector.select(timeout):
                if key.fileobj is self._wake_r:
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except OSError:
                        pass
                    continue
                sock = key.fileobj
                address, _ = self._waiting.pop(sock)
                self._selector.unregister(sock)
                self._hand_over(sock, address)
            now = time.monotonic()
            while True:
                try:
                    sock, address = self._incoming.get_nowait()
                except queue.Empty:
                    break
                self._waiting[sock] = (address, now + ACSE_TIMEOUT)
                self._selector.register(sock, selectors.EVENT_READ)
            while self._waiting and (len(self._waiting) > MAX_WAITING
                                     or next(iter(self._waiting.values()))[1] <= now):
                sock, _ = self._waiting.popitem(last=False)
                self._selector.unregister(sock)
                self.shutdown_request(sock)
        for sock in list(self._waiting):
            self.shutdown_request(sock)
        self._waiting.clear()

    def _hand_over(self, sock, address) -> None:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":  # the peer left without a word
                self.shutdown_request(sock)
                return
            super().process_request(sock, address)
        except Exception:  # noqa: BLE001 - as socketserver does with a request that fails
            self.handle_error(sock, address)
            self.shutdown_request(sock)

    def shutdown(self) -> None:
        self._gate_stop.set()
        self._wake()
        super().shutdown()
        self._gate.join(timeout=5)


class SharedPortServer(GatedServer):
    """GatedServer whose listening socket has SO_REUSEPORT: several receiver processes (run_dicom_scp
    --processes) bind the same port and the kernel spreads the incoming connections over them."""

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        super().server_bind()


def build_ae(config: ReceiverConfig) -> AE:
    ae = AE(ae_title=config.ae_title)
    for context in AllStoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.add_supported_context(Verification, ALL_TRANSFER_SYNTAXES)
    ae.require_called_aet = True
    if config.whitelist:
        ae.require_calling_aet = list(config.whitelist)
    # AssociationLimit counts associations; pynetdicom's own limit (every connection it holds) is a backstop.
    ae.maximum_associations = 2 * MAX_ASSOCIATIONS
    ae.network_timeout = NETWORK_TIMEOUT
    ae.acse_timeout = ACSE_TIMEOUT
    ae.dimse_timeout = DIMSE_TIMEOUT
    ae.maximum_pdu_size = 0  # no limit on what we accept
    return ae


def handlers_for(config: ReceiverConfig) -> list:
    limit = AssociationLimit(MAX_ASSOCIATIONS)
    return [
        (evt.EVT_REQUESTED, limit.requested),
        (evt.EVT_RELEASED, limit.ended),
        (evt.EVT_ABORTED, limit.ended),
        (evt.EVT_CONN_CLOSE, limit.ended),
        (evt.EVT_C_STORE, handle_store, [config]),
        (evt.EVT_C_ECHO, handle_echo),
        (evt.EVT_CONN_OPEN, handle_conn_open),
        (evt.EVT_RELEASED, handle_assoc_end),
        (evt.EVT_ABORTED, handle_assoc_end),
    ]


def server_start(config: ReceiverConfig, *, address: str, shared_port: bool = False):
    """Start one receiver (non-blocking); returns the pynetdicom server. ``shared_port``: other processes
    serve the same port (SO_REUSEPORT)."""
    ae = build_ae(config)
    # AE.start_server(block=False), with GatedServer for ThreadedAssociationServer (AE.make_server's server_class).
    server = ae.make_server((address, config.port), evt_handlers=handlers_for(config),
                            server_class=SharedPortServer if shared_port else GatedServer)
    threading.Thread(target=server.serve_forever, name=f"AcceptorServer@{config.port}", daemon=True).start()
    ae._servers.append(server)  # as start_server does: AE.shutdown() stops it too
    try:
        server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        pass
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
