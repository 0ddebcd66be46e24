"""xnatlite's own DICOM upper layer (PS3.8) and DIMSE for the receiver's side: C-STORE and C-ECHO as SCP.

Why not pynetdicom's acceptor: it gives every association two threads (the association's and its DUL's)
that poll the socket and each other about every millisecond, and under one interpreter lock that polling
cost more CPU a file than the rest of the receiver (docs/perf.md). Here an association is one thread doing
blocking reads: it parses each PDU with memoryview slices of one buffer, hands a complete dataset to the
``store`` callback, and writes the response with one ``sendall``. Nothing polls; an idle association costs
nothing until its ``NETWORK_TIMEOUT``.

A connection that has not yet sent anything has no thread: it waits in the server's one selector thread
(``Server``) for at most ``acse_timeout`` seconds, at most ``max_waiting`` at once (a new one closes the one
waiting longest), so idle or half-open sockets cannot take the threads or the association slots of real
senders. Beyond ``max_associations`` working associations a request is rejected at once (transient, local
limit exceeded).

What is negotiated: the called AE title must be the server's, the calling AE title on the whitelist when
there is one, DICOM's application context, protocol version 1. Each proposed presentation context is
accepted for a supported abstract syntax with the first of its proposed transfer syntaxes that is
supported (what pynetdicom's acceptor does); SCP/SCU role selection is answered with the requestor as SCU
only. The maximum PDU length offered is ``MAX_PDU``: a larger PDU from the peer aborts the association.
Any other DIMSE request than C-STORE and C-ECHO gets its response with status 0x0211 (unrecognized
operation); C-CANCEL is ignored. Unknown or malformed PDUs abort the association (A-ABORT, service
provider). Nothing from the peer except AE titles is logged.
"""
from __future__ import annotations

import logging
import selectors
import socket
import struct
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Sequence

logger = logging.getLogger(__name__)

APPLICATION_CONTEXT = "1.2.840.10008.3.1.1.1"
MAX_PDU = 1 << 20              # offered to the peer; also what one A-ASSOCIATE-RQ may be
SOCKET_BUFFER = 1 << 16

# PDU types
ASSOCIATE_RQ, ASSOCIATE_AC, ASSOCIATE_RJ, P_DATA, RELEASE_RQ, RELEASE_RP, ABORT = range(1, 8)

# A-ASSOCIATE-RJ (result, source, reason)
REJECT_CALLED_AE = (1, 1, 7)           # permanent, service user, called AE title not recognized
REJECT_CALLING_AE = (1, 1, 3)          # permanent, service user, calling AE title not recognized
REJECT_CONTEXT = (1, 1, 2)             # permanent, service user, application context name not supported
REJECT_VERSION = (1, 2, 2)             # permanent, service provider (ACSE), protocol version not supported
REJECT_LIMIT = (2, 3, 2)               # transient, service provider (presentation), local limit exceeded

# A-ABORT reasons (source 2, service provider)
ABORT_UNRECOGNIZED_PDU, ABORT_UNEXPECTED_PDU, ABORT_INVALID_PARAMETER = 1, 2, 6

# Presentation context results
ACCEPTED, USER_REJECTED, ABSTRACT_SYNTAX_NOT_SUPPORTED, TRANSFER_SYNTAXES_NOT_SUPPORTED = 0, 1, 3, 4

C_STORE_RQ, C_ECHO_RQ, C_CANCEL_RQ = 0x0001, 0x0030, 0x0FFF
NO_DATASET = 0x0101
UNRECOGNIZED_OPERATION = 0x0211

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PDU_HEAD = struct.Struct(">BBI")
_ITEM_HEAD = struct.Struct(">BBH")
_ELEMENT = struct.Struct("<HHI")


class Abort(Exception):
    """The association is aborted: A-ABORT (service provider) with ``reason``, then the connection closed."""

    def __init__(self, reason: int = 0):
        super().__init__(reason)
        self.reason = reason


class _Closed(Exception):
    """The peer closed the connection (or it broke): nothing more to send."""


@dataclass
class Policy:
    """What the server accepts; ``limits`` is read on every use (the caller may change it at run time)."""

    ae_title: str
    whitelist: tuple[str, ...]
    abstract_syntaxes: frozenset[str]
    transfer_syntaxes: frozenset[str]
    implementation_uid: str
    implementation_version: str
    limits: Callable[[], "Limits"]


@dataclass(frozen=True)
class Limits:
    max_associations: int
    max_waiting: int
    acse_timeout: float
    network_timeout: float


@dataclass
class Association:
    """One negotiated association, as the ``store`` callback sees it."""

    calling_ae: str
    called_ae: str
    contexts: dict[int, tuple[str, str]] = field(default_factory=dict)   # id -> (abstract, transfer syntax)
    max_send: int = 0                                                   # the peer's maximum PDU (0: none)


# store(association, sop_class_uid, sop_instance_uid, transfer_syntax, dataset fragments) -> DIMSE status
StoreCallback = Callable[[Association, str, str, str, Sequence[memoryview]], int]


def _uid(raw) -> str:
    return bytes(raw).rstrip(b"\x00 ").decode("ascii")


def _ae(raw) -> str:
    return bytes(raw).decode("ascii", "replace").strip()


def _item(kind: int, value: bytes) -> bytes:
    return _ITEM_HEAD.pack(kind, 0, len(value)) + value


def _pdu(kind: int, body: bytes) -> bytes:
    return _PDU_HEAD.pack(kind, 0, len(body)) + body


def _command(elements: list[tuple[int, bytes]]) -> bytes:
    """A command set (implicit VR little endian, group 0000) with its group length first."""
    body = b"".join(_ELEMENT.pack(0, element, len(value)) + value for element, value in elements)
    return _ELEMENT.pack(0, 0, 4) + struct.pack("<I", len(body)) + body


def _response(command_field: int, message_id: int, status: int, sop_class: bytes | None,
              sop_instance: bytes | None) -> bytes:
    elements = []
    if sop_class is not None:
        elements.append((0x0002, sop_class))
    elements += [(0x0100, struct.pack("<H", command_field | 0x8000)), (0x0120, struct.pack("<H", message_id)),
                 (0x0800, struct.pack("<H", NO_DATASET)), (0x0900, struct.pack("<H", status))]
    if sop_instance is not None:
        elements.append((0x1000, sop_instance))
    return _command(elements)


def _parse_command(raw: bytes) -> dict[int, bytes]:
    elements: dict[int, bytes] = {}
    view, pos, end = memoryview(raw), 0, len(raw)
    while pos < end:
        if pos + 8 > end:
            raise Abort(ABORT_INVALID_PARAMETER)
        group, element, length = _ELEMENT.unpack_from(view, pos)
        pos += 8
        if group != 0 or pos + length > end:
            raise Abort(ABORT_INVALID_PARAMETER)
        elements[element] = raw[pos:pos + length]
        pos += length
    return elements


def _u16(elements: dict[int, bytes], element: int) -> int:
    value = elements.get(element)
    if value is None or len(value) != 2:
        raise Abort(ABORT_INVALID_PARAMETER)
    return struct.unpack("<H", value)[0]


class _Request:
    """A parsed A-ASSOCIATE-RQ."""

    def __init__(self, body: memoryview):
        if len(body) < 68:
            raise Abort(ABORT_INVALID_PARAMETER)
        self.version = _U16.unpack_from(body, 0)[0]
        self.called_raw, self.calling_raw = bytes(body[4:20]), bytes(body[20:36])
        self.called, self.calling = _ae(self.called_raw), _ae(self.calling_raw)
        self.application_context = ""
        self.contexts: list[tuple[int, str, list[str]]] = []
        self.roles: dict[str, tuple[int, int]] = {}
        self.max_length = 0
        for kind, value in _items(body, 68):
            if kind == 0x10:
                self.application_context = _uid(value)
            elif kind == 0x20:
                if len(value) < 4:
                    raise Abort(ABORT_INVALID_PARAMETER)
                abstract, transfers = "", []
                for sub, sub_value in _items(value, 4):
                    if sub == 0x30:
                        abstract = _uid(sub_value)
                    elif sub == 0x40:
                        transfers.append(_uid(sub_value))
                self.contexts.append((value[0], abstract, transfers))
            elif kind == 0x50:
                for sub, sub_value in _items(value, 0):
                    if sub == 0x51 and len(sub_value) == 4:
                        self.max_length = _U32.unpack_from(sub_value, 0)[0]
                    elif sub == 0x54 and len(sub_value) >= 4:
                        n = _U16.unpack_from(sub_value, 0)[0]
                        if len(sub_value) != n + 4:
                            raise Abort(ABORT_INVALID_PARAMETER)
                        self.roles[_uid(sub_value[2:2 + n])] = (sub_value[2 + n], sub_value[3 + n])


def _items(view: memoryview, pos: int):
    end = len(view)
    while pos < end:
        if pos + 4 > end:
            raise Abort(ABORT_INVALID_PARAMETER)
        kind, _, length = _ITEM_HEAD.unpack_from(view, pos)
        pos += 4
        if pos + length > end:
            raise Abort(ABORT_INVALID_PARAMETER)
        yield kind, view[pos:pos + length]
        pos += length


class _Link:
    """One association's connection, served by its own thread from the A-ASSOCIATE-RQ to the end."""

    def __init__(self, server: "Server", sock: socket.socket):
        self.server, self.sock = server, sock
        self.reader = sock.makefile("rb", buffering=SOCKET_BUFFER)
        self.association: Association | None = None
        self.counted = False

    # ----------------------------------------------------------------- transport
    def _read_pdu(self) -> tuple[int, memoryview]:
        head = self.reader.read(6)
        if len(head) < 6:
            raise _Closed
        kind, _, length = _PDU_HEAD.unpack(head)
        if length > MAX_PDU + 6:  # 6: the slack some senders take for the PDV's own header
            raise Abort(ABORT_INVALID_PARAMETER)
        body = bytearray(length)
        if length and self.reader.readinto(body) != length:
            raise _Closed
        return kind, memoryview(body)

    def _send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            raise _Closed from None

    def _abort(self, reason: int) -> None:
        try:
            self.sock.sendall(_pdu(ABORT, bytes((0, 0, 2, reason))))
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()

    # ----------------------------------------------------------------- the association
    def run(self) -> None:
        limits = self.server.policy.limits()
        try:
            self.sock.settimeout(limits.acse_timeout)
            kind, body = self._read_pdu()
            if kind != ASSOCIATE_RQ:
                raise Abort(ABORT_UNEXPECTED_PDU if 1 <= kind <= ABORT else ABORT_UNRECOGNIZED_PDU)
            if not self._associate(_Request(body), limits):
                return
            self.sock.settimeout(limits.network_timeout)
            self._serve()
        except Abort as abort:
            self._abort(abort.reason)
        except (_Closed, TimeoutError, OSError):
            if self.association is not None:
                self._abort(0)  # idle past the network timeout, or the connection broke
        except Exception:  # noqa: BLE001 - one association's fault never takes the server down
            logger.exception("DICOM association failed")
            self._abort(0)
        finally:
            self.server._ended(self)
            self.close()

    def _reject(self, reason: tuple[int, int, int]) -> bool:
        self._send(_pdu(ASSOCIATE_RJ, bytes((0,) + reason)))
        return False

    def _associate(self, request: _Request, limits: Limits) -> bool:
        policy = self.server.policy
        if not request.version & 1:
            return self._reject(REJECT_VERSION)
        if request.called != policy.ae_title:
            return self._reject(REJECT_CALLED_AE)
        if policy.whitelist and request.calling not in policy.whitelist:
            return self._reject(REJECT_CALLING_AE)
        if request.application_context != APPLICATION_CONTEXT:
            return self._reject(REJECT_CONTEXT)
        if not self.server._count(self, limits.max_associations):
            logger.warning("DICOM receiver: %d associations at once; one more refused (local limit)",
                           limits.max_associations)
            return self._reject(REJECT_LIMIT)
        self.counted = True
        association = Association(calling_ae=request.calling, called_ae=request.called,
                                  max_send=request.max_length)
        items = [_item(0x10, APPLICATION_CONTEXT.encode())]
        for context_id, abstract, transfers in request.contexts:
            result, chosen = ABSTRACT_SYNTAX_NOT_SUPPORTED, transfers[0] if transfers else ""
            if abstract in policy.abstract_syntaxes:
                result = TRANSFER_SYNTAXES_NOT_SUPPORTED
                for syntax in transfers:
                    if syntax in policy.transfer_syntaxes:
                        result, chosen = ACCEPTED, syntax
                        break
                scu_role, _ = request.roles.get(abstract, (1, 0))
                if result == ACCEPTED and not scu_role:
                    result = USER_REJECTED  # the requestor as SCP only: nothing this receiver serves
            if result == ACCEPTED:
                association.contexts[context_id] = (abstract, chosen)
            items.append(_item(0x21, bytes((context_id, 0, result, 0)) + _item(0x40, chosen.encode("ascii", "replace"))))
        user = [_item(0x51, _U32.pack(MAX_PDU)), _item(0x52, policy.implementation_uid.encode()),
                _item(0x55, policy.implementation_version.encode())]
        for uid, (scu_role, _) in request.roles.items():
            raw = uid.encode("ascii")
            user.append(_item(0x54, _U16.pack(len(raw)) + raw + bytes((1 if scu_role else 0, 0))))
        items.append(_item(0x50, b"".join(user)))
        header = _U16.pack(1) + b"\x00\x00" + request.called_raw + request.calling_raw + bytes(32)
        self._send(_pdu(ASSOCIATE_AC, header + b"".join(items)))
        self.association = association
        return True

    def _serve(self) -> None:
        association = self.association
        contexts = association.contexts
        command_parts: list[memoryview] = []
        data_parts: list[memoryview] = []
        command: dict[int, bytes] | None = None
        context_id = -1
        while True:
            kind, body = self._read_pdu()
            if kind == RELEASE_RQ:
                if command_parts or command is not None:
                    raise Abort(ABORT_UNEXPECTED_PDU)
                self._send(_pdu(RELEASE_RP, bytes(4)))
                return
            if kind == ABORT:
                return
            if kind != P_DATA:
                raise Abort(ABORT_UNEXPECTED_PDU if 1 <= kind <= ABORT else ABORT_UNRECOGNIZED_PDU)
            pos, end = 0, len(body)
            while pos < end:
                if pos + 6 > end:
                    raise Abort(ABORT_INVALID_PARAMETER)
                length = _U32.unpack_from(body, pos)[0]
                pdv_context, control = body[pos + 4], body[pos + 5]
                if length < 2 or pos + 4 + length > end:
                    raise Abort(ABORT_INVALID_PARAMETER)
                fragment = body[pos + 6:pos + 4 + length]
                pos += 4 + length
                if pdv_context not in contexts:
                    raise Abort(ABORT_INVALID_PARAMETER)
                if command is None:  # a command set is being received
                    if not control & 1 or (command_parts and pdv_context != context_id):
                        raise Abort(ABORT_UNEXPECTED_PDU)
                    context_id = pdv_context
                    command_parts.append(fragment)
                    if not control & 2:
                        continue
                    command = _parse_command(b"".join(command_parts))
                    command_parts = []
                    if command.get(0x0800, b"\x01\x01") != b"\x01\x01":
                        continue  # its dataset follows
                elif control & 1 or pdv_context != context_id:
                    raise Abort(ABORT_UNEXPECTED_PDU)
                else:
                    data_parts.append(fragment)
                    if not control & 2:
                        continue
                self._dispatch(context_id, command, data_parts)
                command, data_parts = None, []

    def _dispatch(self, context_id: int, command: dict[int, bytes], dataset: list[memoryview]) -> None:
        field_ = _u16(command, 0x0100)
        message_id = _u16(command, 0x0110)
        sop_class, sop_instance = command.get(0x0002), command.get(0x1000)
        if field_ == C_STORE_RQ and sop_class is not None and sop_instance is not None and dataset:
            transfer = self.association.contexts[context_id][1]
            try:
                class_uid, instance_uid = _uid(sop_class), _uid(sop_instance)
            except UnicodeDecodeError:
                raise Abort(ABORT_INVALID_PARAMETER) from None
            status = self.server.store(self.association, class_uid, instance_uid, transfer, dataset)
        elif field_ == C_ECHO_RQ:
            status = 0x0000
        elif field_ == C_CANCEL_RQ:
            return
        elif field_ & 0x8000:
            raise Abort(ABORT_UNEXPECTED_PDU)  # a response: this side sends no requests
        else:
            status = UNRECOGNIZED_OPERATION
        self._respond(context_id, _response(field_, message_id, status, sop_class, sop_instance))

    def _respond(self, context_id: int, command: bytes) -> None:
        """The response command set, in one P-DATA-TF unless the peer's maximum PDU is smaller."""
        room = self.association.max_send - 12 if self.association.max_send else len(command)
        room = max(room, 64)
        pdus = []
        for start in range(0, len(command), room):
            part = command[start:start + room]
            control = 0x03 if start + room >= len(command) else 0x01
            pdus.append(_pdu(P_DATA, _U32.pack(len(part) + 2) + bytes((context_id, control)) + part))
        self._send(b"".join(pdus))


class Server:
    """One listening AE: ``shutdown()`` stops listening and closes the connections still waiting to speak;
    associations already under way go on until they end (as pynetdicom's server did)."""

    def __init__(self, *, address: str, port: int, policy: Policy, store: StoreCallback,
                 association_end: Callable[[], None] = lambda: None, shared_port: bool = False):
        self.policy, self.store, self.association_end = policy, store, association_end
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if shared_port:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind((address, port))
            listener.listen(128)
        except OSError:
            listener.close()
            raise
        listener.setblocking(False)
        self.listener = listener
        self.server_address = listener.getsockname()
        self._lock = threading.Lock()
        self._working: set[int] = set()
        self._waiting: OrderedDict[socket.socket, float] = OrderedDict()  # socket -> deadline
        self._selector = selectors.DefaultSelector()
        self._selector.register(listener, selectors.EVENT_READ)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._stop = threading.Event()
        self._gate = threading.Thread(target=self._gate_run, name=f"DicomGate@{port}", daemon=True)
        self._gate.start()

    # ----------------------------------------------------------------- associations
    def _count(self, link: _Link, limit: int) -> bool:
        with self._lock:
            if len(self._working) >= limit:
                return False
            self._working.add(id(link))
            return True

    def _ended(self, link: _Link) -> None:
        with self._lock:
            self._working.discard(id(link))
        if link.association is not None:
            try:
                self.association_end()
            except Exception:  # noqa: BLE001
                logger.exception("DICOM association end handler failed")

    # ----------------------------------------------------------------- the gate: accept, wait, hand over
    def _gate_run(self) -> None:
        try:
            while not self._stop.is_set():
                deadline = next(iter(self._waiting.values())) if self._waiting else None
                timeout = 1.0 if deadline is None else max(0.0, min(1.0, deadline - time.monotonic()))
                for key, _ in self._selector.select(timeout):
                    sock = key.fileobj
                    if sock is self.listener:
                        self._accept()
                    elif sock is self._wake_r:
                        self._drain_wake()
                    else:
                        del self._waiting[sock]
                        self._selector.unregister(sock)
                        self._hand_over(sock)
                limits = self.policy.limits()
                now = time.monotonic()
                while self._waiting and (len(self._waiting) > limits.max_waiting
                                         or next(iter(self._waiting.values())) <= now):
                    sock, _ = self._waiting.popitem(last=False)
                    self._selector.unregister(sock)
                    _drop(sock)
        finally:
            for sock in list(self._waiting):
                _drop(sock)
            self._waiting.clear()
            self._selector.close()
            self.listener.close()
            self._wake_r.close()
            self._wake_w.close()

    def _accept(self) -> None:
        deadline = time.monotonic() + self.policy.limits().acse_timeout
        while True:
            try:
                sock, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: keep serving what is open
                logger.warning("DICOM receiver: accept failed: %s", exc.strerror)
                return
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
            sock.setblocking(False)
            self._waiting[sock] = deadline
            self._selector.register(sock, selectors.EVENT_READ)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _hand_over(self, sock: socket.socket) -> None:
        try:
            if sock.recv(1, socket.MSG_PEEK) == b"":  # the peer left without a word
                _drop(sock)
                return
        except OSError:
            _drop(sock)
            return
        sock.setblocking(True)
        link = _Link(self, sock)
        threading.Thread(target=link.run, name="DicomAssociation", daemon=True).start()

    def shutdown(self) -> None:
        self._stop.set()
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass
        self._gate.join(timeout=5)


def _drop(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
