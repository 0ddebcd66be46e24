"""UID helpers: DicomEdit's hashUID (byte-identical with mizer UIDValue) and fresh UIDs."""
from __future__ import annotations

import hashlib
import uuid


def hash_uid(value: str | None) -> str | None:
    """``2.25.`` + the unsigned value of a SHA-1 name-based (v5) UUID with no namespace."""
    if value is None:
        return None
    d = bytearray(hashlib.sha1(value.encode("utf-8")).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50
    d[8] = (d[8] & 0x3F) | 0x80
    return "2.25." + str(int.from_bytes(d, "big"))


def new_uid() -> str:
    """A fresh random UID in the ``2.25`` arc (dcm4che UIDUtils.createUID())."""
    return "2.25." + str(uuid.uuid4().int)


def new_uid_with_prefix(prefix: str) -> str:
    """``prefix`` + "." + random digits, at most 64 characters (dcm4che UIDUtils.createUID(root))."""
    prefix = prefix.rstrip(".")
    room = 64 - len(prefix) - 1
    if room < 1:
        raise ValueError("UID prefix too long")
    digits = str(uuid.uuid4().int)[:room].lstrip("0") or "1"
    return f"{prefix}.{digits}"
