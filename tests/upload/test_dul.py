"""xnatlite's own DICOM upper layer (upload/dul.py) against real peers: pynetdicom's SCU and SCP for the
bytes intake gets, and hand-built PDUs for what a peer may do wrong (the answers read byte by byte)."""
from __future__ import annotations

import io
import socket
import struct

import pydicom
import pytest
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom import AE, evt
from pynetdicom.sop_class import MRImageStorage, PatientRootQueryRetrieveInformationModelFind, Verification

from prearchive.services import intake
from tests.dicom_factory import encapsulated, make_dataset
from tests.upload.test_dicom_scp import free_port
from upload import dicom_scp, dul
from upload.dicom_scp import ReceiverConfig, server_start


@pytest.fixture
def receiver():
    started = []

    def start(**kwargs):
        port = free_port()
        started.append(server_start(ReceiverConfig("XNATLITE", port, **kwargs), address="127.0.0.1"))
        return port

    yield start
    for server in started:
        server.shutdown()


def _scu(calling="SCANNER", contexts=((MRImageStorage, None),)) -> AE:
    ae = AE(ae_title=calling)
    for abstract, syntaxes in contexts:
        if syntaxes:
            ae.add_requested_context(abstract, syntaxes)
        else:
            ae.add_requested_context(abstract)
    return ae


def _send(port: int, ds, syntax: str) -> int:
    ae = _scu(contexts=((MRImageStorage, [syntax]),))
    assoc = ae.associate("127.0.0.1", port, ae_title="XNATLITE" if port else "")
    assert assoc.is_established
    status = assoc.send_c_store(ds).Status
    assoc.release()
    assert assoc.is_released
    return status


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit])
@pytest.mark.parametrize("max_pdu", [dul.MAX_PDU, 4096])
def test_intake_gets_byte_for_byte_what_pynetdicoms_encoded_dataset_gives(receiver, monkeypatch, syntax, max_pdu):
    """The same C-STORE into pynetdicom's own SCP and into xnatlite's: the file xnatlite hands intake is
    event.encoded_dataset(), also when the dataset comes in many PDUs (a small maximum PDU offered)."""
    monkeypatch.setattr(dul, "MAX_PDU", max_pdu)
    ds = make_dataset(rows=128, columns=128, StudyInstanceUID="1.2.3.4.5", SOPInstanceUID="1.2.3.4.5.6.7")
    if syntax == JPEGBaseline8Bit:
        ds = encapsulated(ds, syntax, frames=250)
    elif syntax == ImplicitVRLittleEndian:
        ds.file_meta.TransferSyntaxUID = syntax
    theirs, ours = [], []

    def pynetdicom_store(event):
        theirs.append(event.encoded_dataset())
        return 0x0000

    reference = AE(ae_title="XNATLITE")
    reference.add_supported_context(MRImageStorage, [syntax])
    reference.maximum_pdu_size = max_pdu
    reference_port = free_port()
    server = reference.start_server(("127.0.0.1", reference_port), block=False,
                                    evt_handlers=[(evt.EVT_C_STORE, pynetdicom_store)])
    try:
        assert _send(reference_port, ds, syntax) == 0x0000
    finally:
        server.shutdown()

    def intake_receives(**kwargs):
        ours.append(kwargs["data"])
        assert (kwargs["calling_aet"], kwargs["called_aet"]) == ("SCANNER", "XNATLITE")
        return intake.IntakeResult(intake.STORED, sop_instance_uid="1.2.3.4.5.6.7")

    monkeypatch.setattr(intake, "dicom_file_receive", intake_receives)
    assert _send(receiver(), ds, syntax) == 0x0000
    assert len(ours) == len(theirs) == 1
    assert ours[0] == theirs[0]
    back = pydicom.dcmread(io.BytesIO(ours[0]))
    assert back.SOPInstanceUID == "1.2.3.4.5.6.7" and back.file_meta.TransferSyntaxUID == syntax
    assert back.PixelData == ds.PixelData
    if max_pdu == 4096:
        assert len(ours[0]) > 2 * max_pdu  # it did come in several PDUs


def test_negotiation_accepts_storage_and_verification_with_the_first_supported_syntax(receiver):
    port = receiver()
    ae = _scu(contexts=((MRImageStorage, ["1.2.3.999", ImplicitVRLittleEndian, ExplicitVRLittleEndian]),
                        (MRImageStorage, ["1.2.3.999"]),
                        (PatientRootQueryRetrieveInformationModelFind, None),
                        (Verification, None)))
    assoc = ae.associate("127.0.0.1", port, ae_title="XNATLITE")
    assert assoc.is_established
    accepted = {cx.context_id: (cx.abstract_syntax, cx.transfer_syntax[0]) for cx in assoc.accepted_contexts}
    rejected = {cx.context_id: cx.result for cx in assoc.rejected_contexts}
    assert accepted == {1: (MRImageStorage, ImplicitVRLittleEndian), 7: (Verification, ImplicitVRLittleEndian)}
    assert rejected == {3: 4, 5: 3}  # transfer syntaxes not supported, abstract syntax not supported
    assert assoc.acceptor.maximum_length == dul.MAX_PDU
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    assert assoc.is_released


# ---------------------------------------------------------------------------------------- hand-built PDUs
def _item(kind: int, value: bytes) -> bytes:
    return struct.pack(">BBH", kind, 0, len(value)) + value


def _rq(called=b"XNATLITE", calling=b"SCANNER", *, version=1, context=b"1.2.840.10008.3.1.1.1",
        abstract=MRImageStorage.encode(), syntax=ExplicitVRLittleEndian.encode()) -> bytes:
    body = (struct.pack(">HH", version, 0) + called.ljust(16) + calling.ljust(16) + bytes(32)
            + _item(0x10, context)
            + _item(0x20, bytes((1, 0, 0, 0)) + _item(0x30, abstract) + _item(0x40, syntax))
            + _item(0x50, _item(0x51, struct.pack(">I", 16384))))
    return struct.pack(">BBI", 1, 0, len(body)) + body


def _answer(port: int, *pdus: bytes) -> list[tuple[int, bytes]]:
    """Send ``pdus``, then read every PDU the receiver answers until it closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for pdu in pdus:
            sock.sendall(pdu)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    answers = []
    while data:
        kind, length = data[0], struct.unpack(">I", data[2:6])[0]
        answers.append((kind, data[6:6 + length]))
        data = data[6 + length:]
    return answers


def _pdv(context: int, control: int, data: bytes) -> bytes:
    body = struct.pack(">IBB", len(data) + 2, context, control) + data
    return struct.pack(">BBI", 4, 0, len(body)) + body


def _command(**elements: bytes) -> bytes:
    tags = {"sop_class": 0x0002, "field": 0x0100, "message_id": 0x0110, "data_set_type": 0x0800}
    body = b"".join(struct.pack("<HHI", 0, tags[k], len(v)) + v for k, v in elements.items())
    return struct.pack("<HHII", 0, 0, 4, len(body)) + body


RELEASE = struct.pack(">BBI", 5, 0, 4) + bytes(4)


@pytest.mark.parametrize("rq, reason", [
    (_rq(called=b"OTHER"), (1, 1, 7)),
    (_rq(calling=b"INTRUDER"), (1, 1, 3)),
    (_rq(version=2), (1, 2, 2)),
    (_rq(context=b"1.2.3.4"), (1, 1, 2)),
], ids=["called-ae", "calling-ae", "protocol-version", "application-context"])
def test_association_rejections_say_why(receiver, rq, reason):
    port = receiver(whitelist=("SCANNER",))
    (kind, body), = _answer(port, rq)
    assert kind == 3 and tuple(body[1:4]) == reason


def test_beyond_the_limit_the_rejection_is_transient_local_limit(receiver, monkeypatch):
    monkeypatch.setattr(dicom_scp, "MAX_ASSOCIATIONS", 1)
    port = receiver()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as first:
        first.sendall(_rq())
        assert first.recv(1) == b"\x02"  # A-ASSOCIATE-AC: the one slot
        (kind, body), = _answer(port, _rq())
        assert kind == 3 and tuple(body[1:4]) == (2, 3, 2)
    # The slot is freed when the first connection goes: the next request is accepted.
    kinds = [kind for kind, _ in _answer(port, _rq(), RELEASE)]
    assert kinds in ([2, 6], [3])
    if kinds == [3]:  # the first association's thread had not yet ended: once more
        assert [kind for kind, _ in _answer(port, _rq(), RELEASE)] == [2, 6]


def test_release_gets_its_response_and_garbage_an_abort(receiver):
    port = receiver()
    assert [kind for kind, _ in _answer(port, _rq(), RELEASE)] == [2, 6]
    (kind, body), = _answer(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert kind == 7 and body[2] == 2  # A-ABORT from the service provider
    answers = _answer(port, _rq(), b"\x04\x00\xff\xff\xff\xff")  # a P-DATA far beyond the maximum offered
    assert [kind for kind, _ in answers] == [2, 7]


def test_data_on_a_context_not_accepted_aborts(receiver):
    port = receiver()
    echo = _command(sop_class=b"1.2.840.10008.1.1\x00", field=b"\x30\x00", message_id=b"\x01\x00",
                    data_set_type=b"\x01\x01")
    answers = _answer(port, _rq(), _pdv(3, 0x03, echo))
    assert [kind for kind, _ in answers] == [2, 7]


def test_an_operation_other_than_store_and_echo_is_answered_unrecognized(receiver):
    port = receiver()
    find = _command(sop_class=MRImageStorage.encode() + b"\x00", field=b"\x20\x00", message_id=b"\x07\x00",
                    data_set_type=b"\x01\x01")
    answers = _answer(port, _rq(), _pdv(1, 0x03, find), RELEASE)
    assert [kind for kind, _ in answers] == [2, 4, 6]
    pdv = answers[1][1]
    assert pdv[4:6] == b"\x01\x03"  # context 1, the last fragment of a command
    elements, pos, command = {}, 0, pdv[6:]
    while pos < len(command):
        _, element, length = struct.unpack("<HHI", command[pos:pos + 8])
        elements[element] = command[pos + 8:pos + 8 + length]
        pos += 8 + length
    assert elements[0x0100] == b"\x20\x80" and elements[0x0120] == b"\x07\x00" and elements[0x0900] == b"\x11\x02"
