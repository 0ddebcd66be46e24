"""The on-disk cache of the archived session page's images (snapshots and montages, rendered by
prearchive.review_dicom).

``{session folder}/.snapshots/{scan}/.{kind}-{key}.png``: the key hashes the kind and the source files' names,
sizes and modification times, so a rewritten file (an edit re-runs the project script) never shows a stale
image. Dot names: the archive's walks (edits, file counts, zips, catalogs) skip them, and the cache goes with
the session folder. Written under a temporary name, then renamed; an unwritable archive still gets its image."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Callable

from xnatlite.models import ImageSession, Scan
from .data import session_folder

CACHE_DIR = ".snapshots"


def scan_image_cached(*, session: ImageSession, scan: Scan, kind: str, sources: list[Path],
                      render: Callable[[], bytes]) -> bytes:
    """The cached PNG of ``kind`` made from ``sources``, or ``render()``'s, stored for the next time."""
    digest = hashlib.sha256(kind.encode())
    for path in sources:
        st = path.stat()
        digest.update(f"{path.name}|{st.st_size}|{st.st_mtime_ns}\n".encode())
    folder = session_folder(session) / CACHE_DIR / scan.scan_id
    target = folder / f".{kind}-{digest.hexdigest()[:32]}.png"
    try:
        return target.read_bytes()
    except FileNotFoundError:
        pass
    data = render()
    tmp = folder / f".{target.name}.{os.getpid()}.tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, target)
    except OSError:
        tmp.unlink(missing_ok=True)
    return data
