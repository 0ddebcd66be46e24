"""Writing an edited header in front of the file's own pixel data (the site-wide script at intake).

The site script edits header elements only (unless it names the pixel data or alters pixels: then intake
reads and writes the whole file as before). So intake reads the header up to the pixel data, applies the
script, and writes: preamble + file meta + the header's elements + the original bytes from the pixel data
element to the end of the file. The output is byte for byte what pydicom's ``dcmwrite`` of the fully read
and edited dataset would write (tests/prearchive check this): elements the script did not touch are
written from their raw bytes, the others by pydicom's own element writer.

``encode`` returns None when the file is not one it can do this for (another encoding, any element after
the pixel data: trailing padding, signatures, a private sequence after encapsulated fragments, a script that added an element at or after the pixel data, ...): the caller then takes the
full path.
"""
from __future__ import annotations

import struct

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, PersonName

from .headers import HeaderError, encapsulated_end

_PIXEL_TAGS = (0x7FE00008, 0x7FE00009, 0x7FE00010)
_LONG_VRS = frozenset(str(v) for v in EXPLICIT_VR_LENGTH_32)
_PACK_IMPLICIT = struct.Struct("<HHL").pack
_PACK_SHORT = struct.Struct("<HH2sH").pack
_PACK_LONG = _PACK_LONG_UL = struct.Struct("<HH2sHL").pack


def script_is_header_only(text: str) -> bool:
    """Conservative: a script that mentions pixel data, pixel editing or the groups after it (trailing
    padding, signatures) is applied to the whole file."""
    low = (text or "").lower()
    return not any(word in low for word in ("7fe", "alterpixels", "fffa", "fffc", "xxxx"))


def pixel_length(raw: bytes | memoryview, end: int | None, implicit: bool) -> int | None:
    """The declared length of the (7FE0,0010) Pixel Data element at ``raw[end:]`` when that element runs
    exactly to the end of the file (0xFFFFFFFF: encapsulated, its fragments walked to the sequence
    delimiter, which ends the file); None otherwise (no pixel data there, any element after it, an odd or
    truncated value): then the full read gives the site script every element of the file."""
    size = len(raw)
    if end is None or end + 8 > size:
        return None
    group, element = struct.unpack_from("<HH", raw, end)
    if (group << 16 | element) != 0x7FE00010:
        return None
    if not implicit and bytes(raw[end + 4:end + 6]) in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN"):
        if end + 12 > size:
            return None
        length, header = struct.unpack_from("<L", raw, end + 8)[0], 12
    elif implicit:
        length, header = struct.unpack_from("<L", raw, end + 4)[0], 8
    else:
        return None
    if length == 0xFFFFFFFF:
        return length if encapsulated_end(lambda at: raw[at:at + 8], end + header, size) == size else None
    return length if length % 2 == 0 and end + header + length == size else None


def dataset_pixel_length(ds: Dataset, raw: bytes | memoryview, end: int | None) -> int | None:
    """pixel_length in the encoding ``ds`` was read with (little endian only)."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if little is not True or implicit is None:
        return None
    meta = getattr(ds, "file_meta", None)
    if meta is not None and _raw_str(meta, 0x00020010) == DeflatedExplicitVRLittleEndian:
        return None  # read from its inflated copy: ``end`` is not a position in ``raw``
    return pixel_length(raw, end, bool(implicit))


def tail_ok(raw: bytes | memoryview, end: int | None, implicit: bool) -> bool:
    return pixel_length(raw, end, implicit) is not None


def _us(ds: Dataset, tag: int):
    """ds.get(keyword) of a US element, read from its two raw bytes when it has one value (no decoding)."""
    elem = ds._dict.get(tag)
    if elem is None:
        return None
    if (type(elem) is RawDataElement and elem.VR in ("US", None) and isinstance(elem.value, bytes)
            and len(elem.value) == 2 and elem.is_little_endian):
        return elem.value[0] | elem.value[1] << 8
    return ds[tag].value


def pixel_length_check(ds: Dataset, length: int) -> None:
    """What a full read checks (headers._check_full_read): the pixel data is not shorter than the image."""
    if length == 0xFFFFFFFF:
        return
    try:
        rows, cols, bits, spp = (_us(ds, 0x00280010), _us(ds, 0x00280011), _us(ds, 0x00280100),
                                 _us(ds, 0x00280002) or 1)
        frames = int(ds.get("NumberOfFrames") or 1) if 0x00280008 in ds._dict else 1
        if rows and cols and bits:
            expected = int(rows) * int(cols) * int(spp) * frames * int(bits) // 8
            if length < expected:
                raise HeaderError("truncated", f"The pixel data is truncated: {length} of {expected} bytes.")
    except (TypeError, ValueError):
        return
    except HeaderError:
        raise
    except Exception as exc:  # noqa: BLE001 - as headers.header_read(full=True)
        raise HeaderError("truncated", f"The DICOM file cannot be parsed ({type(exc).__name__}).") from None


_META_REQUIRED = (0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013)


def _element_bytes(tag: int, elem, implicit: bool, encodings) -> bytes:
    """One element as pydicom's write_data_element writes it; raw elements without pydicom's overhead."""
    if type(elem) is RawDataElement:
        value, vr = elem.value, elem.VR
        n = len(value) if isinstance(value, bytes) else -1
        if n >= 0 and elem.length != 0xFFFFFFFF:
            if implicit:
                return _PACK_IMPLICIT(tag >> 16, tag & 0xFFFF, n) + value
            if vr and len(vr) == 2:
                if vr in _LONG_VRS:
                    return _PACK_LONG(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, n) + value
                if n <= 0xFFFF:
                    return _PACK_SHORT(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), n) + value
    else:
        value = _text_value_bytes(elem, encodings)
        if value is not None:
            n, vr = len(value), elem.VR
            if implicit:
                return _PACK_IMPLICIT(tag >> 16, tag & 0xFFFF, n) + value
            if vr in _LONG_VRS:
                return _PACK_LONG(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), 0, n) + value
            if n <= 0xFFFF:
                return _PACK_SHORT(tag >> 16, tag & 0xFFFF, vr.encode("ascii"), n) + value
    key = _sequence_key(elem, implicit, encodings) if elem.VR == "SQ" else None
    if key is not None:
        cached = _SEQUENCES.get(key)
        if cached is not None:
            return cached
    out = DicomBytesIO()
    out.is_implicit_VR, out.is_little_endian = implicit, True
    write_data_element(out, elem, encodings)
    value = out.getvalue()
    if key is not None:
        _SEQUENCES[key] = value
        while len(_SEQUENCES) > 64:
            _SEQUENCES.pop(next(iter(_SEQUENCES)))
    return value


# What pydicom's writers (write_string, write_UI, write_text, write_PN) write for a decoded text value that is
# plain ASCII: the text (values joined by '\\'), padded to even length with a space (a NUL for UI). Every
# character set DICOM names encodes ASCII as ASCII without escape sequences; the ones listed here are those
# checked (tests/prearchive/test_dicomwrite.py compares with pydicom's own writer).
_STRING_VRS = frozenset(("AE", "AS", "CS", "UI"))
_TEXT_VRS = frozenset(("LO", "SH", "LT", "ST", "UT", "UC"))
_PLAIN_ENCODINGS = frozenset(("iso8859", "latin_1", "utf_8", "iso8859_2", "iso8859_3", "iso8859_4", "iso8859_5",
                              "iso8859_6", "iso8859_7", "iso8859_8", "iso8859_9", "iso8859_15"))


def _first_encoding(encodings) -> str | None:
    key = encodings if isinstance(encodings, str) else tuple(encodings or ())
    found = _FIRST_ENCODING.get(key)
    if found is None:
        try:
            found = convert_encodings(encodings or [default_encoding])[0]
        except Exception:  # noqa: BLE001 - pydicom's writer says what is wrong with it
            found = ""
        if len(_FIRST_ENCODING) < 64:
            _FIRST_ENCODING[key] = found
    return found


_FIRST_ENCODING: dict = {}


def _text_value_bytes(elem, encodings) -> bytes | None:
    """The value bytes pydicom writes for ``elem`` (a DataElement), or None where only pydicom can say."""
    vr = elem.VR
    if elem.is_undefined_length or (vr not in _STRING_VRS and vr not in _TEXT_VRS and vr != "PN"):
        return None
    if (vr in _TEXT_VRS or vr == "PN") and _first_encoding(encodings) not in _PLAIN_ENCODINGS:
        return None  # ASCII is encoded by the first character set pydicom tries
    value = elem.value
    if value is None or (type(value) is str and value == ""):
        return b""
    if isinstance(value, MultiValue):
        if vr == "PN" or not value or not all(type(v) in (str, UID) for v in value):
            return None
        text = "\\".join(value)
    elif vr == "PN":
        if type(value) is not PersonName or "=" in str(value):
            return None
        text = str(value)
    elif type(value) in (str, UID):
        text = value
    else:
        return None
    if not text.isascii():
        return None
    raw = text.encode("ascii")
    if len(raw) % 2:
        raw += b"\x00" if vr == "UI" else b" "
    return raw


# The same small sequence of plain text items (the de-identification code the site script appends to every
# file) encodes to the same bytes: pydicom's writer is deterministic in everything the key holds.
_SEQUENCES: dict = {}
_SEQ_TEXT_VRS = frozenset(("AE", "CS", "DA", "DS", "IS", "LO", "LT", "SH", "ST", "TM", "UI", "UT"))


def _sequence_key(elem, implicit: bool, encodings) -> tuple | None:
    seq = elem.value
    if type(elem) is RawDataElement or not isinstance(seq, Sequence) or len(seq) > 4:
        return None
    items = []
    for item in seq:
        if type(item) is not Dataset or len(item._dict) > 8 or getattr(item, "file_meta", None) is not None:
            return None
        values = []
        for tag, sub in item._dict.items():
            if type(sub) is RawDataElement or sub.VR not in _SEQ_TEXT_VRS or type(sub.value) is not str:
                return None
            values.append((int(tag), sub.VR, sub.value))
        items.append((bool(getattr(item, "is_undefined_length_sequence_item", False)), tuple(sorted(values))))
    return (int(elem.tag), implicit, repr(encodings), bool(elem.is_undefined_length), tuple(items))


def _unchanged(tag: int, elem, original: dict | None, before: dict | None):
    """The element as read from the file when the script left it alone (read conversions don't count:
    intake decoded it to route or filter, the value is the same). Sequences are written by pydicom."""
    if original is None or before is None or type(elem) is RawDataElement or before.get(tag) is not elem:
        return elem
    first = original.get(tag)
    if type(first) is RawDataElement and first.value is not None and first.VR != "SQ" and elem.VR != "SQ":
        return first
    return elem


def _resolved(ds: Dataset, tag: int, elem):
    """As pydicom's Dataset.get_item: a raw element without a value (empty, or a deferred read) is decoded."""
    if type(elem) is RawDataElement and elem.value is None:
        return ds[tag]
    return elem


def _raw_str(container: Dataset, tag: int) -> str | None:
    """An element's text without decoding it (ASCII raw bytes, trailing NULs/spaces off); None if absent.
    Decoding here would make the element look edited (see _unchanged)."""
    elem = container._dict.get(tag)
    if elem is None:
        return None
    value = elem.value
    if type(elem) is RawDataElement:
        if value is None:
            return ""
        if isinstance(value, bytes) and value.isascii():
            return value.decode("ascii").rstrip("\0 ")
        value = container[tag].value
    return "" if value is None else str(value)


def _meta_bytes(ds: Dataset, meta: FileMetaDataset, original: dict | None, before: dict | None) -> bytes:
    """The file meta group as dcmwrite(enforce_file_format=True) writes it."""
    d = meta._dict
    fast = all(t in d and (d[t].length if type(d[t]) is RawDataElement else not d[t].is_empty)
               for t in _META_REQUIRED)
    if fast:  # dcmwrite would leave the media storage UIDs as they are
        ds_class, ds_instance = _raw_str(ds, 0x00080016), _raw_str(ds, 0x00080018)
        fast = bool(ds_class and ds_instance and _raw_str(meta, 0x00020002) == ds_class
                    and _raw_str(meta, 0x00020003) == ds_instance)
    if not fast:
        file_meta = FileMetaDataset(dict(d))
        meta_class, ds_class = file_meta.get("MediaStorageSOPClassUID"), ds.get("SOPClassUID")
        if meta_class is None or (ds_class and ds_class != meta_class):
            file_meta.MediaStorageSOPClassUID = ds_class
        meta_instance, ds_instance = file_meta.get("MediaStorageSOPInstanceUID"), ds.get("SOPInstanceUID")
        if meta_instance is None or (ds_instance and ds_instance != meta_instance):
            file_meta.MediaStorageSOPInstanceUID = ds_instance
        fp = DicomBytesIO()
        fp.is_implicit_VR, fp.is_little_endian = False, True
        write_file_meta_info(fp, file_meta, enforce_standard=True)
        return fp.getvalue()
    body = b"".join(_element_bytes(t, _resolved(meta, t, _unchanged(t, d[t], original, before)), False, "iso8859")
                    for t in sorted(d, key=int) if t != 0x00020000)
    return _PACK_LONG_UL(2, 0, b"UL", 4, len(body)) + body


def snapshot(ds: Dataset) -> tuple[dict, dict]:
    """(the dataset's elements, the file meta's elements) as they are now, for ``encode``."""
    meta = getattr(ds, "file_meta", None)
    return dict(ds._dict), dict(meta._dict) if meta is not None else {}


_UIDS: dict[str, UID] = {}


def _uid(text: str) -> UID:
    """UID(text), kept per text (the transfer syntaxes: a handful)."""
    uid = _UIDS.get(text)
    if uid is None:
        uid = UID(text)
        if len(_UIDS) < 64:
            _UIDS[text] = uid
    return uid


def encode(ds: Dataset, raw: bytes | memoryview, end: int, *, original: dict | None = None,
           before: dict | None = None, original_meta: dict | None = None,
           before_meta: dict | None = None) -> bytes | None:
    """``ds`` (read up to ``end``, the pixel data element, and edited) + ``raw[end:]``; None: not here.
    ``original``: ``ds._dict`` as read; ``before``: as it was just before the script ran (the same for
    the file meta): elements the script did not replace are written from their original bytes."""
    meta = getattr(ds, "file_meta", None)
    if not isinstance(meta, FileMetaDataset):
        return None
    tsyntax = _raw_str(meta, 0x00020010)
    tsyntax = _uid(tsyntax) if tsyntax else None
    if not tsyntax or tsyntax.is_private or not tsyntax.is_transfer_syntax:
        return None
    if tsyntax == DeflatedExplicitVRLittleEndian or not tsyntax.is_little_endian:
        return None
    implicit = tsyntax.is_implicit_VR
    if not tail_ok(raw, end, implicit):
        return None
    if tuple(ds.original_encoding) != (implicit, True) or ds.original_character_set != ds._character_set:
        return None  # pydicom would re-encode every element: leave it to pydicom
    tags = sorted(ds._dict, key=int)  # (int keys: BaseTag's own comparison is Python code, ~40 calls a file)
    if any(t >> 16 in (0, 2) for t in tags) or (tags and tags[-1] >= _PIXEL_TAGS[0]):
        return None
    preamble = getattr(ds, "preamble", None)
    if preamble and len(preamble) != 128:
        return None
    encodings = ds.get("SpecificCharacterSet", "iso8859")
    parts = [preamble or b"\x00" * 128, b"DICM", _meta_bytes(ds, meta, original_meta, before_meta)]
    d = ds._dict
    for tag in tags:
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths are not written (PS3.5 7.2)
        parts.append(_element_bytes(tag, _resolved(ds, tag, _unchanged(tag, d[tag], original, before)), implicit,
                                    encodings))
    parts.append(raw[end:])
    return b"".join(parts)
