"""The benchmark's baseline: a bare pynetdicom storage SCP that only writes each dataset to a DICOM file.
``python -m upload.bench_scp PORT OUTDIR [AE_TITLE]`` (no Django)."""
from __future__ import annotations

import os
import re
import socket
import sys

from pynetdicom import ALL_TRANSFER_SYNTAXES, AE, AllStoragePresentationContexts, evt


def main(argv: list[str]) -> None:
    port, out = int(argv[0]), argv[1]
    title = argv[2] if len(argv) > 2 else "BARESCP"

    def handle_store(event):
        # pynetdicom's documented fast storage handler: a DICOM file (preamble, file meta, the dataset's bytes
        # as received), with no decoding of the dataset.
        name = re.sub(r"[^\d.]", "_", event.request.AffectedSOPInstanceUID)
        with open(os.path.join(out, name + ".dcm"), "wb") as fh:
            fh.write(event.encoded_dataset(include_meta=True))
        return 0x0000

    def nodelay(event):
        event.assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    ae = AE(ae_title=title)
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
    ae.maximum_pdu_size = 0
    print(f"bare SCP listening on 127.0.0.1:{port}", flush=True)
    ae.start_server(("127.0.0.1", port), block=True,
                    evt_handlers=[(evt.EVT_C_STORE, handle_store), (evt.EVT_CONN_OPEN, nodelay)])


if __name__ == "__main__":
    main(sys.argv[1:])
