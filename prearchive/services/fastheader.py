"""A fast header read for the common file: what ``headers.header_read`` returns, without pydicom's reader.

Intake reads ~30 header elements a file and keeps ~25; pydicom's generic reader (a generator, a file object,
a Dataset per group) costs more than everything else intake does in Python. This walks the bytes with
``struct`` and builds the same objects pydicom would (RawDataElements with the same VR, length, value and
position; the file meta decoded where pydicom decodes it; the same original encoding), so everything after
it (routing, filters, file_fields, the site script, dicomwrite) sees no difference. tests/prearchive/
test_fastheader.py compares the two on many files.

It only takes the plain case: preamble and DICM, explicit VR little endian file meta, an implicit or explicit
VR little endian dataset (native or encapsulated pixel data), every element of defined length, a pixel data
element that fits in the file. Anything else (no preamble, big endian, deflate, undefined lengths, a VR it
does not know, anything out of bounds, no pixel data) returns None and intake uses ``header_read``, which
also gives every error its reason. Nothing here raises for bad input.
"""
from __future__ import annotations

import io
import os
import re
import struct
from pathlib import Path
from typing import Iterable

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.charset import convert_encodings, default_encoding
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian, UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from .headers import Header, _wanted_tags

CHUNK = 64 * 1024  # a header longer than this goes to pydicom
_PIXEL_TAGS = frozenset((0x7FE00008, 0x7FE00009, 0x7FE00010))
_VRS = frozenset(v.value.encode("ascii") for v in VR if len(v.value) == 2)
_LONG = frozenset(v.encode("ascii") for v in EXPLICIT_VR_LENGTH_32)
_EXPLICIT = struct.Struct("<HH2sH").unpack_from
_IMPLICIT = struct.Struct("<HHL").unpack_from
_UL = struct.Struct("<L").unpack_from


class _Fallback(Exception):
    pass


FIRST_READ = 8 * 1024  # most headers end (at the pixel data) well within this: read more only when not


class _Short(_Fallback):
    """The bytes read end before the header does: read more (up to CHUNK), or pydicom decides."""


def header_read(path: Path | None, *, extra_tags: Iterable = (), raw: bytes | None = None,
                all_tags: bool = False) -> Header | None:
    """``headers.header_read(path or raw, extra_tags=..., all_tags=...)`` (header-only), or None."""
    try:
        wanted = None if all_tags else frozenset(_wanted_tags(tuple(sorted(extra_tags, key=str)))) | {0x00080005}
        if raw is not None:
            return _read(raw, len(raw), lambda: raw[-8:], wanted, raw, path)
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size

            def tail() -> bytes:  # the last 8 bytes (encapsulated pixel data ends with its delimiter)
                fh.seek(size - 8)
                return fh.read(8)

            data = fh.read(FIRST_READ)
            try:
                return _read(data, size, tail, wanted, raw, path)
            except _Short:
                if len(data) >= size:
                    raise
            data += fh.read(CHUNK - len(data))
            return _read(data, size, tail, wanted, raw, path)
    except _Fallback:
        return None
    except (struct.error, ValueError, TypeError, KeyError, IndexError, UnicodeError, OverflowError):
        return None


def _read(data: bytes, size: int, tail, wanted: frozenset | None, raw: bytes | None, path: Path | None) -> Header:
    """``data``: the file's first bytes (all of them from the receiver); ``tail()``: its last 8 bytes. _Short
    when ``data`` ends before the header does."""
    n = len(data)
    if n < 144 or data[128:132] != b"DICM":
        raise _Fallback
    # File meta: explicit VR little endian, group 0002.
    meta: dict = {}
    pos = 132
    while True:
        if pos + 8 > n:
            raise _Short
        group, elem, vr, length = _EXPLICIT(data, pos)
        if group != 2:
            break
        if vr not in _VRS:
            raise _Fallback
        if vr in _LONG:
            length = _UL(data, pos + 8)[0]
            header = 12
        else:
            header = 8
        if length == 0xFFFFFFFF:
            raise _Fallback
        if pos + header + length > n:
            raise _Short
        tag = BaseTag(group << 16 | elem)
        vr_s = vr.decode("ascii")
        value = data[pos + header:pos + header + length] if length else empty_value_for_VR(vr_s, raw=True)
        meta[tag] = RawDataElement(tag, vr_s, length, value, pos + header, False, True)
        pos += header + length
    if not meta or group == 0:
        raise _Fallback  # no file meta, or a command set: pydicom's business
    file_meta = FileMetaDataset(meta)
    file_meta.set_original_encoding(is_implicit_vr=False, is_little_endian=True,
                                    character_encoding=default_encoding)
    transfer_syntax = _meta_decode(file_meta, meta)
    if transfer_syntax == ImplicitVRLittleEndian:
        implicit = True
    elif transfer_syntax == ExplicitVRLittleEndian:
        implicit = False
    elif (isinstance(transfer_syntax, UID) and transfer_syntax.is_transfer_syntax and not transfer_syntax.is_private
          and transfer_syntax.is_compressed and transfer_syntax.is_little_endian
          and transfer_syntax != DeflatedExplicitVRLittleEndian):
        implicit = False
    else:
        raise _Fallback
    # pydicom checks the first element's VR against the transfer syntax (and switches, with a warning).
    if pos + 8 > n:
        raise _Short
    found_implicit = not (0x40 < data[pos + 4] < 0x5B and 0x40 < data[pos + 5] < 0x5B)
    if found_implicit != implicit:
        raise _Fallback

    elements: dict = {}
    charset = None
    end = None
    while pos + 8 <= n:
        if implicit:
            group, elem, length = _IMPLICIT(data, pos)
            vr_s, header = None, 8
        else:
            group, elem, vr, length = _EXPLICIT(data, pos)
            if vr not in _VRS:
                raise _Fallback
            if vr in _LONG:
                if pos + 12 > n:
                    raise _Short
                length = _UL(data, pos + 8)[0]
                header = 12
            else:
                header = 8
            vr_s = vr.decode("ascii")
        tag = group << 16 | elem
        if tag in _PIXEL_TAGS:
            end = pos
            break
        if group == 0xFFFE or length == 0xFFFFFFFF or group < 8:
            raise _Fallback
        value_at = pos + header
        pos = value_at + length
        if pos > n:
            raise _Short  # beyond what was read (or truncated: then pydicom decides)
        if wanted is not None and tag not in wanted:
            continue
        if length:
            value = data[value_at:pos]
        else:
            value = empty_value_for_VR(vr_s, raw=True)
        btag = BaseTag(tag)
        elements[btag] = RawDataElement(btag, vr_s, length, value, value_at, implicit, True)
        if tag == 0x00080005:
            charset = value
    if end is None:
        raise _Short if n < size else _Fallback  # no pixel data (or a header longer than CHUNK)
    _pixel_fits(data, end, size, implicit, tail)

    # As pydicom's read_partial: FileDataset over the elements, its character set read from the dataset
    # (which decodes the SpecificCharacterSet element). pydicom builds an intermediate Dataset for the
    # same result; a path is named (ds.filename) without the os.stat pydicom makes for a deferred read's
    # timestamp: a header-only read defers nothing.
    if raw is not None:
        ds = FileDataset(io.BytesIO(raw), elements, data[:128], file_meta, implicit, True)
    else:
        ds = FileDataset(_NO_BUFFER, elements, data[:128], file_meta, implicit, True)
        ds.buffer, ds.filename, ds.fileobj_type = None, str(path), open
    ds.set_original_encoding(implicit, True, ds._character_set if charset is not None else default_encoding)
    return Header(dataset=ds, size=size, full=False, end=end)


_NO_BUFFER = io.BytesIO(b"")


_GROUP_LENGTH, _TRANSFER_SYNTAX = BaseTag(0x00020000), BaseTag(0x00020010)
_PLAIN_UID = re.compile(rb"[0-9.]+\x00?")
_SYNTAXES: dict[bytes, UID] = {}  # raw value -> the UID pydicom decodes it to (public transfer syntaxes only)


def _meta_decode(file_meta: FileMetaDataset, meta: dict):
    """What pydicom's reader decodes of the file meta (its first element, to test the encoding; the group
    length; the transfer syntax, which it returns), to the same elements, without pydicom's conversion
    machinery for the usual values: a 4-byte group length, a plain transfer syntax UID."""
    first = min(meta)
    for tag in (first, _GROUP_LENGTH) if first != _GROUP_LENGTH else (first,):
        raw = meta.get(tag)
        if type(raw) is not RawDataElement:
            continue
        if tag == _GROUP_LENGTH and raw.VR == "UL" and isinstance(raw.value, bytes) and len(raw.value) == 4:
            meta[tag] = DataElement(tag, "UL", _UL(raw.value)[0], raw.value_tell, False, already_converted=True)
        else:
            file_meta[tag]  # noqa: B018 - pydicom's own decoding
    raw = meta.get(_TRANSFER_SYNTAX)
    if type(raw) is RawDataElement and raw.VR == "UI" and isinstance(raw.value, bytes) and \
            _PLAIN_UID.fullmatch(raw.value):
        uid = _SYNTAXES.get(raw.value)
        if uid is None:
            uid = UID(raw.value.rstrip(b"\x00").decode("ascii"))
            if not (uid.is_transfer_syntax and not uid.is_private):
                return file_meta.get("TransferSyntaxUID")
            if len(_SYNTAXES) < 64:
                _SYNTAXES[raw.value] = uid
        meta[_TRANSFER_SYNTAX] = DataElement(_TRANSFER_SYNTAX, "UI", uid, raw.value_tell, False,
                                             already_converted=True)
        return uid
    return file_meta.get("TransferSyntaxUID")


def _pixel_fits(data: bytes, end: int, size: int, implicit: bool, tail) -> None:
    """headers._check_pixel_element: the declared length fits in the file (else pydicom's path says why)."""
    if end + 12 > len(data):
        raise _Short if len(data) < size else _Fallback
    if implicit:
        length, header = _UL(data, end + 4)[0], 8
    elif data[end + 4:end + 6] in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR"):
        length, header = _UL(data, end + 8)[0], 12
    else:
        length, header = struct.unpack_from("<H", data, end + 6)[0], 8
    if length == 0xFFFFFFFF:
        last = tail()
        if len(last) != 8 or last[:4] not in (b"\xfe\xff\xdd\xe0", b"\xff\xfe\xe0\xdd"):
            raise _Fallback
    elif end + header + length > size:
        raise _Fallback
