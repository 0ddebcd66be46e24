"""``python tests/hardening/scu_proc.py PORT OUT FILE...``: a scanner in its own process (pynetdicom SCU).

Sends the files in order over one association and appends ``SOPInstanceUID STATUS`` to OUT for each, flushed
at once (STATUS -1: no response, the association was lost). Like a scanner, it stops at the first lost
association (the files after it get no line: no Success, sent again later) and goes on after a failure
status (that file has its line: no Success either)."""
from __future__ import annotations

import sys

from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.presentation import build_context


def main(port: int, out_path: str, files: list[str]) -> int:
    datasets = [dcmread(f) for f in files]
    ae = AE(ae_title="SCANPROC")
    ae.requested_contexts = [build_context(uid) for uid in sorted({str(ds.SOPClassUID) for ds in datasets})]
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 60
    with open(out_path, "a", buffering=1) as out:
        assoc = ae.associate("127.0.0.1", port, ae_title="XNATLITE")
        if not assoc.is_established:
            return 1
        for ds in datasets:
            try:
                response = assoc.send_c_store(ds)
                status = int(response.Status) if response is not None and "Status" in response else -1
            except Exception:  # noqa: BLE001 - the receiver went away mid-file
                status = -1
            out.write(f"{ds.SOPInstanceUID} {status}\n")
            if status == -1 or not assoc.is_established:
                return 2
        assoc.release()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2], sys.argv[3:]))
