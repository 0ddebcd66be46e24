"""A DICOM peer for the hardening tests: pynetdicom's SCU, recording the status the sender saw per file."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from pynetdicom import AE
from pynetdicom.presentation import build_context

MR = "1.2.840.10008.5.1.4.1.1.4"
SUCCESS = 0x0000


@dataclass
class Outcome:
    """status per SOPInstanceUID: the DIMSE status the sender saw, or None (no response: association lost)."""

    status: dict[str, int | None] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, sop: str, status: int | None) -> None:
        with self.lock:
            self.status[sop] = status

    def count(self) -> int:
        with self.lock:
            return len(self.status)

    @property
    def succeeded(self) -> set[str]:
        return {s for s, v in self.status.items() if v == SUCCESS}

    @property
    def refused(self) -> set[str]:
        return {s for s, v in self.status.items() if v != SUCCESS}


def send(datasets, *, port: int, outcome: Outcome, pause: float = 0.0, ae_title: str = "XNATLITE") -> None:
    """Send ``datasets`` over one association, re-associating if it is lost; every file gets an outcome."""
    ae = AE(ae_title="HARDENSCU")
    ae.requested_contexts = [build_context(MR)] + [build_context(uid) for uid in
                                                   {str(ds.SOPClassUID) for ds in datasets} - {MR}]
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    assoc = None
    for ds in datasets:
        if assoc is None or not assoc.is_established:
            assoc = ae.associate("127.0.0.1", port, ae_title=ae_title)
            if not assoc.is_established:
                outcome.record(str(ds.SOPInstanceUID), None)
                assoc = None
                time.sleep(0.2)
                continue
        try:
            response = assoc.send_c_store(ds)
            status = int(response.Status) if response is not None and "Status" in response else None
        except Exception:  # noqa: BLE001 - the peer went away mid-file: no response seen
            status = None
        outcome.record(str(ds.SOPInstanceUID), status)
        if pause:
            time.sleep(pause)
    if assoc is not None and assoc.is_established:
        assoc.release()


def send_threads(batches, *, port: int, outcome: Outcome, pause: float = 0.0) -> list[threading.Thread]:
    threads = [threading.Thread(target=send, args=(batch,), kwargs=dict(port=port, outcome=outcome, pause=pause),
                                daemon=True) for batch in batches]
    for t in threads:
        t.start()
    return threads
