"""Idle TCP connections neither block the DICOM receiver nor stay open (issue 16 item 10): 70 raw sockets
that never send an association request, then a real C-STORE, which must succeed at once."""
from __future__ import annotations

import socket
import time

import pytest

from prearchive.models import PrearchiveFile
from prearchive.services import rowbatch
from tests.conftest import wait_until
from tests.dicom_factory import make_dataset
from tests.upload.test_dicom_scp import associate, free_port
from upload import dicom_scp
from upload.dicom_scp import ReceiverConfig, server_start


@pytest.fixture
def receiver(transactional_db):
    port = free_port()
    server = server_start(ReceiverConfig.default(ae_title="XNATLITE", port=port), address="127.0.0.1")
    yield port
    server.shutdown()
    rowbatch.writer_stop()


@pytest.fixture
def idle_sockets(receiver):
    socks = []
    started = time.monotonic()
    for _ in range(70):
        s = socket.create_connection(("127.0.0.1", receiver), timeout=5)
        socks.append(s)
    assert time.monotonic() - started < 5, "the receiver accepted connections slowly"
    yield socks
    for s in socks:
        s.close()


def _closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(0.01)
    try:
        return sock.recv(1) == b""
    except socket.timeout:
        return False
    except OSError:
        return True


def test_seventy_idle_connections_do_not_block_a_real_store(receiver, idle_sockets):
    time.sleep(0.5)  # every idle connection is accepted and waiting for its request
    started = time.monotonic()
    assoc = associate(receiver)
    assert assoc.is_established, "the receiver refused a real sender while idle sockets were open"
    ds = make_dataset(StudyInstanceUID="1.2.3.4.70", PatientComments="Project: none")
    assert assoc.send_c_store(ds).Status == 0x0000
    assoc.release()
    assert time.monotonic() - started < 5, "the store waited for the idle connections"
    wait_until(lambda: PrearchiveFile.objects.filter(sop_instance_uid=ds.SOPInstanceUID).exists(), timeout=10,
               what="the row of the stored file")


def test_idle_connections_are_dropped_after_the_acse_timeout(receiver, idle_sockets):
    time.sleep(1)
    assert not any(_closed_by_peer(s) for s in idle_sockets)  # they wait (threadless) ...
    wait_until(lambda: all(_closed_by_peer(s) for s in idle_sockets), timeout=dicom_scp.ACSE_TIMEOUT + 20,
               every=0.5, what="the receiver closing the idle connections")  # ... until ACSE_TIMEOUT


def test_more_idle_connections_than_may_wait_close_the_oldest(receiver, monkeypatch):
    monkeypatch.setattr(dicom_scp, "MAX_WAITING", 10)
    socks = [socket.create_connection(("127.0.0.1", receiver), timeout=5) for _ in range(30)]
    try:
        wait_until(lambda: sum(_closed_by_peer(s) for s in socks[:20]) == 20, timeout=10, what="the oldest closed")
        assert not any(_closed_by_peer(s) for s in socks[20:])
        assoc = associate(receiver)
        assert assoc.is_established
        assoc.release()
    finally:
        for s in socks:
            s.close()


def test_beyond_the_association_limit_a_request_is_refused_not_queued(receiver, monkeypatch):
    """Associations that did send their request are what the limit counts: one more is rejected at once
    (transient, local limit), and a slot freed is a slot taken again."""
    monkeypatch.setattr(dicom_scp, "MAX_ASSOCIATIONS", 2)
    port = free_port()
    server = server_start(ReceiverConfig.default(ae_title="XNATLITE", port=port), address="127.0.0.1")
    try:
        first, second = associate(port), associate(port)
        assert first.is_established and second.is_established
        started = time.monotonic()
        third = associate(port)
        assert not third.is_established and third.is_rejected
        assert time.monotonic() - started < 5
        first.release()
        wait_until(lambda: associate_and_release(port), timeout=10, what="a freed slot")
        second.release()
    finally:
        server.shutdown()


def associate_and_release(port) -> bool:
    assoc = associate(port)
    if assoc.is_established:
        assoc.release()
        return True
    return False
