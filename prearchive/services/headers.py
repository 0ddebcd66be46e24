"""Reading DICOM headers for intake: only the tags intake needs, never the pixel data.

Pure functions over pydicom; no Django. ``header_read`` opens a file, decides whether it is DICOM at all,
reads the needed tags, and checks that the file is not truncated (by looking at the length of the pixel
data element, or that parsing ended at the end of the file) without reading the pixels.
"""
from __future__ import annotations

import functools
import io
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pydicom
import pydicom.config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.tag import Tag

# Tags the file row and the builder need.
FILE_TAGS = (
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber",
    "InstanceNumber", "Modality", "SeriesDescription", "SeriesDate", "SeriesTime", "StudyDate", "StudyTime",
    "AcquisitionDate", "AcquisitionTime", "StationName", "Manufacturer", "ManufacturerModelName",
    "ProtocolName", "BodyPartExamined", "RequestedProcedureDescription", "ImageType", "NumberOfFrames",
    "RadiopharmaceuticalInformationSequence", "TimezoneOffsetFromUTC",
)
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}
UID_RE = re.compile(r"^[0-9A-Za-z._-]{1,64}$")
SCAN_DIR_RE = re.compile(r"^[\w.-]+$")
LABEL_BAD_CHARS = re.compile(r"[^\w-]")
_SAFE_UID = re.compile(r"[^0-9A-Za-z.]")


class HeaderError(Exception):
    """The file cannot be taken in. ``code`` is an IntakeRejection.Reason value."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Header:
    dataset: Dataset
    size: int
    full: bool  # the whole file (pixel data included) was read
    end: int | None = None  # header-only read: where reading stopped (the pixel data element, if any)


def _tag_list(names: Iterable[Any]) -> list[int]:
    tags = []
    for name in names:
        try:
            tags.append(int(Tag(name)))
        except (ValueError, TypeError, OverflowError):
            continue
    return tags


@functools.lru_cache(maxsize=64)
def _wanted_tags(extra: tuple) -> list[int]:
    return sorted(set(_tag_list(FILE_TAGS) + _tag_list(extra)))


def _looks_like_raw_dataset(head: bytes) -> bool:
    """A dataset without preamble (as some zip entries are): it starts with a group 0002 or 0008 tag."""
    return len(head) >= 8 and head[:2] in (b"\x02\x00", b"\x08\x00") and head[2:4] != b"\x00\x00" or (
        len(head) >= 8 and head[:4] in (b"\x08\x00\x00\x00", b"\x02\x00\x00\x00")
    )


_ITEM = struct.Struct("<HHL").unpack_from


def encapsulated_end(read, start: int, size: int) -> int | None:
    """Where encapsulated pixel data whose first item is at ``start`` ends: just after its sequence
    delimitation item, found by walking the items (Basic Offset Table, fragments) by their lengths; ``read(at)``
    gives the 8 bytes at ``at``. None when the walk meets anything else (an undefined-length item, another
    tag, the end of the file). That the last 8 bytes of a file are a sequence delimiter proves nothing: an
    undefined-length sequence after the pixel data (GE ultrasound's private MovieGroup) ends the same way."""
    pos = start
    while pos + 8 <= size:
        head = read(pos)
        if len(head) < 8:
            return None
        group, element, length = _ITEM(head)
        if group != 0xFFFE:
            return None
        if element == 0xE0DD:
            return pos + 8
        if element != 0xE000 or length == 0xFFFFFFFF:
            return None
        pos += 8 + length
    return None


def _check_pixel_element(fp, size: int, little: bool, implicit: bool) -> None:
    """fp sits at the start of the pixel data element: its declared length must fit in the file."""
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8:
        raise HeaderError("truncated", "The file ends inside the pixel data element.")
    endian = "<" if little else ">"
    if implicit:
        length = struct.unpack(endian + "L", head[4:8])[0]
        header_len = 8
    else:
        vr = head[4:6]
        if vr in (b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"UT", b"SQ", b"UC", b"UR"):
            if len(head) < 12:
                raise HeaderError("truncated", "The file ends inside the pixel data element.")
            length = struct.unpack(endian + "L", head[8:12])[0]
            header_len = 12
        else:
            length = struct.unpack(endian + "H", head[6:8])[0]
            header_len = 8
    if length == 0xFFFFFFFF:
        # Encapsulated: the file must end with a sequence delimitation item, or (elements after the pixel
        # data, rare) the fragments must lead to one inside the file.
        fp.seek(max(size - 8, start))
        tail = fp.read(8)
        if tail[:4] not in (b"\xfe\xff\xdd\xe0", b"\xff\xfe\xe0\xdd") and not (
                little and _walk_file(fp, start + header_len, size) is not None):
            raise HeaderError("truncated", "The encapsulated pixel data has no end (truncated file).")
        fp.seek(start)
    elif start + header_len + length > size:
        raise HeaderError(
            "truncated", f"The pixel data is truncated: {size - start - header_len} of {length} bytes present."
        )


def _walk_file(fp, start: int, size: int) -> int | None:
    def read(at: int) -> bytes:
        fp.seek(at)
        return fp.read(8)
    return encapsulated_end(read, start, size)


# A Deflated Explicit VR Little Endian dataset (PS3.5 A.5) is inflated with a cap: 1 MB of deflate can
# inflate to 1 GiB (issue 16 item 6), and pydicom inflates it whole in memory. The stream is inflated twice:
# once only counting (memory: one chunk), then, if it fits, for real.
INFLATE_MAX_BYTES = 256 * 1024 * 1024
_INFLATE_CHUNK = 1024 * 1024
_DEFLATED = "1.2.840.10008.1.2.1.99"
_EXPLICIT_LE = b"1.2.840.10008.1.2.1\x00"
MSG_INFLATE_TOO_LARGE = ("The Deflated dataset inflates to more than {limit} bytes (the limit for one file); "
                         "refused.")
MSG_INFLATE_BROKEN = "The Deflated dataset cannot be inflated (truncated or corrupt)."


_LONG_VRS = (b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT")


def _meta_elements(head: bytes, start: int):
    """(position, element number, value position, value length) of the file meta group at ``head[start:]``
    (explicit VR little endian, group 0002), until the end its group length gives, else until the first
    element of another group."""
    pos, stop = start, len(head)
    if head[start:start + 8] == b"\x02\x00\x00\x00UL\x04\x00" and start + 12 <= len(head):
        stop = min(stop, start + 12 + struct.unpack_from("<L", head, start + 8)[0])
    while pos + 8 <= stop:
        group, element, vr = struct.unpack_from("<HH2s", head, pos)
        if group != 2:
            return
        if vr in _LONG_VRS:
            if pos + 12 > len(head):
                return
            length, value_at = struct.unpack_from("<L", head, pos + 8)[0], pos + 12
        else:
            length, value_at = struct.unpack_from("<H", head, pos + 6)[0], pos + 8
        if length == 0xFFFFFFFF:
            return
        yield pos, element, value_at, length
        pos = value_at + length


def _inflate(fp, keep: bool, limit: int) -> bytes | None:
    """Inflate the rest of ``fp``: the bytes (``keep``) or None; HeaderError beyond ``limit``."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    parts, total = [], 0
    while not inflater.eof:
        chunk = inflater.unconsumed_tail or fp.read(_INFLATE_CHUNK)
        if not chunk:
            raise HeaderError("truncated", MSG_INFLATE_BROKEN)
        try:
            out = inflater.decompress(chunk, _INFLATE_CHUNK)
        except zlib.error:
            raise HeaderError("truncated", MSG_INFLATE_BROKEN) from None
        total += len(out)
        if total > limit:
            raise HeaderError("invalid_value", MSG_INFLATE_TOO_LARGE.format(limit=limit))
        if keep:
            parts.append(out)
    return b"".join(parts) if keep else None


def _deflated_as_explicit(fp, start: int, size: int, limit: int) -> bytes | None:
    """For a Deflated file: the same file with its dataset inflated and the transfer syntax in the file meta
    set to Explicit VR Little Endian (so pydicom reads it without inflating); None for any other file."""
    fp.seek(start)
    head = fp.read(min(size - start, 16 * 1024))
    meta = list(_meta_elements(head, 0))
    ts = next(((at, n) for _pos, element, at, n in meta if element == 0x0010), None)
    if ts is None or head[ts[0]:ts[0] + ts[1]].rstrip(b"\0 ") != _DEFLATED.encode():
        return None
    end = meta[-1][2] + meta[-1][3]
    fp.seek(start + end)
    _inflate(fp, False, limit)  # counting only: a bomb is refused here, having used one chunk of memory
    fp.seek(start + end)
    body = _inflate(fp, True, limit)
    out = bytearray(head[:end])
    delta = len(_EXPLICIT_LE) - ts[1]
    out[ts[0] - 2:ts[0]] = struct.pack("<H", len(_EXPLICIT_LE))
    out[ts[0]:ts[0] + ts[1]] = _EXPLICIT_LE
    for _pos, element, at, n in meta:
        if element == 0x0000 and n == 4:  # the group length
            out[at:at + 4] = struct.pack("<L", struct.unpack_from("<L", out, at)[0] + delta)
    fp.seek(0)
    return fp.read(start) + bytes(out) + body


class _BoundedReader:
    """A binary file whose ``read(n)`` never asks for more than what is left in it. pydicom reads an
    element's declared length in one call, and a buffered ``read(n)`` allocates ``n`` bytes first: a 1 KB
    file declaring a 4 GB element would make intake allocate 4 GB (found by tests/hardening fuzzing: the
    process was OOM-killed)."""

    def __init__(self, fp, size: int):
        self._fp, self._size = fp, size

    def read(self, n: int | None = -1) -> bytes:
        left = max(self._size - self._fp.tell(), 0)
        return self._fp.read(left if n is None or n < 0 or n > left else n)

    def __getattr__(self, name: str):
        return getattr(self._fp, name)


def header_read(path: Path | None, *, extra_tags: Iterable[Any] = (), full: bool = False,
                raw: bytes | None = None, all_tags: bool = False, inflate_max: int = INFLATE_MAX_BYTES) -> Header:
    """Read what intake needs from ``path`` (or from ``raw``, the file's bytes already in memory, as the
    DICOM receiver has them). ``full`` reads the whole dataset (for anonymization). A Deflated dataset is
    inflated here, never by pydicom, and refused when it inflates to more than ``inflate_max`` bytes."""
    size = len(raw) if raw is not None else path.stat().st_size
    if size < 8:
        raise HeaderError("not_dicom", "The file is too short to be DICOM.")
    file_size = size
    with (io.BytesIO(raw) if raw is not None else open(path, "rb")) as raw_fp:
        fp = _BoundedReader(raw_fp, size)
        preamble = fp.read(132)
        force = False
        if len(preamble) < 132 or preamble[128:132] != b"DICM":
            if not _looks_like_raw_dataset(preamble[:8]):
                raise HeaderError("not_dicom", "The file is not DICOM (no DICM prefix and no dataset).")
            force = True
        inflated = _deflated_as_explicit(fp, 0 if force else 132, size, inflate_max)
        was_deflated = inflated is not None
        if was_deflated:  # from here on, the inflated file is read (positions are in it)
            fp = _BoundedReader(io.BytesIO(inflated), len(inflated))
            size = len(inflated)
            del inflated
        fp.seek(0)
        try:
            if full:
                ds = pydicom.dcmread(fp, force=force)
            else:
                wanted = _wanted_tags(tuple(sorted(extra_tags, key=str)))
                ds = pydicom.dcmread(fp, force=force, stop_before_pixels=True,
                                     specific_tags=None if all_tags else wanted)
                end = fp.tell()
        except InvalidDicomError as exc:
            raise HeaderError("not_dicom", f"The file is not DICOM: {type(exc).__name__}.") from None
        except (EOFError, struct.error, OverflowError) as exc:
            raise HeaderError("truncated", f"The DICOM header is truncated ({type(exc).__name__}).") from None
        except (ValueError, KeyError, TypeError, IndexError, NotImplementedError, AttributeError) as exc:
            raise HeaderError("truncated", f"The DICOM header cannot be parsed ({type(exc).__name__}).") from None
        except RecursionError:  # hostile input: sequences nested thousands deep
            raise HeaderError("invalid_value", "The DICOM header nests sequences too deeply.") from None
        except OSError as exc:
            if exc.errno is not None:
                raise  # the storage failed: a server fault, not the file's
            # pydicom's "No tag to read at file position ...": malformed input, not a disk fault
            raise HeaderError("truncated", "The DICOM header cannot be parsed (no tag where one must be).") from None
        except Exception as exc:  # noqa: BLE001 - pydicom's own errors (BytesLengthException, ...) on bad input
            raise HeaderError("truncated", f"The DICOM header cannot be parsed ({type(exc).__name__}).") from None
        try:
            _check_structure(ds, fp, size, end=None if full else end)
        except HeaderError:
            raise
        except RecursionError:
            raise HeaderError("invalid_value", "The DICOM header nests sequences too deeply.") from None
        except Exception as exc:  # noqa: BLE001 - elements are decoded lazily: a bad one fails here
            raise HeaderError("truncated", f"The DICOM header cannot be parsed ({type(exc).__name__}).") from None
    if was_deflated:  # the dataset read from the inflated copy says Deflated again (file_fields, the writer)
        ds.file_meta.TransferSyntaxUID = _DEFLATED
    size = file_size
    if full:
        try:
            _check_full_read(ds, path, size)
        except HeaderError:
            raise
        except Exception as exc:  # noqa: BLE001 - as above
            raise HeaderError("truncated", f"The DICOM file cannot be parsed ({type(exc).__name__}).") from None
    return Header(dataset=ds, size=size, full=full, end=None if full else end)


def _check_structure(ds: Dataset, fp, size: int, *, end: int | None) -> None:
    """After a header-only read (``end`` set): the pixel data element, if any, fits in the file."""
    implicit, little = _encoding(ds)
    if end is None:
        pass
    elif end < size:
        fp.seek(end)
        tag_bytes = fp.read(4)
        fp.seek(end)
        if len(tag_bytes) == 4:
            group, elem = struct.unpack(("<" if little else ">") + "HH", tag_bytes)
            if (group << 16 | elem) in PIXEL_TAGS:
                _check_pixel_element(fp, size, bool(little), bool(implicit))
    elif end > size or _is_image_class(ds):
        # Parsing ran past the end, or an image object ended before its pixel data.
        raise HeaderError("truncated", "The DICOM file is truncated (it ends before its pixel data).")


def _is_image_class(ds: Dataset) -> bool:
    sop_class = str(ds.get("SOPClassUID", "") or "")
    if not sop_class:
        meta = getattr(ds, "file_meta", None)
        sop_class = str(meta.get("MediaStorageSOPClassUID", "") or "") if meta is not None else ""
    try:
        name = pydicom.uid.UID(sop_class).name if sop_class else ""
    except Exception:  # noqa: BLE001
        return False
    return "Image Storage" in name and "Presentation State" not in name


def _encoding(ds: Dataset) -> tuple[bool, bool]:
    """(implicit VR, little endian) of the dataset as read."""
    implicit, little = getattr(ds, "original_encoding", (None, None))
    if implicit is None:
        implicit, little = ds.is_implicit_VR, ds.is_little_endian
    return bool(implicit) if implicit is not None else False, bool(little) if little is not None else True


def _check_full_read(ds: Dataset, path: Path, size: int) -> None:
    """pydicom reads a short final value without complaint: compare the pixel data length instead."""
    if 0x7FE00010 not in ds:
        if _is_image_class(ds):
            raise HeaderError("truncated", "The DICOM file is truncated (it ends before its pixel data).")
        return
    element = ds[0x7FE00010]
    if element.is_undefined_length:
        return
    value = element.value
    if value is None:
        return
    rows, cols = ds.get("Rows"), ds.get("Columns")
    bits, spp = ds.get("BitsAllocated"), ds.get("SamplesPerPixel") or 1
    try:
        frames = int(ds.get("NumberOfFrames") or 1)
        if rows and cols and bits:
            expected = int(rows) * int(cols) * int(spp) * frames * int(bits) // 8
            if len(value) < expected:
                raise HeaderError("truncated", f"The pixel data is truncated: {len(value)} of {expected} bytes.")
    except (TypeError, ValueError):
        return


# Value representations whose raw bytes are the text itself (DICOM's default repertoire when ASCII).
_TEXT_VRS = frozenset(("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UI", "UT",
                       "UC", "UR"))


@functools.lru_cache(maxsize=None)
def _tag_of(keyword: str) -> tuple[int, str] | None:
    from pydicom.datadict import dictionary_VR, tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        return None
    return tag, dictionary_VR(tag)


def _raw_text(ds: Dataset, keyword: str) -> str | None:
    """The value straight from the raw element bytes when they are plain ASCII text; None when the element
    needs pydicom's conversion (already converted, binary, another character set). Intake reads ~20 such
    values a file: skipping the conversion halves its Python cost."""
    entry = _tag_of(keyword)
    if entry is None:
        return None
    elem = ds._dict.get(entry[0])
    if elem is None:
        return ""
    raw = getattr(elem, "value", None)
    if type(elem).__name__ != "RawDataElement" or not isinstance(raw, bytes):
        return None
    if (elem.VR or entry[1]) not in _TEXT_VRS or not raw.isascii():
        return None
    return raw.decode("ascii")


def text(ds: Dataset, keyword: str, limit: int = 64) -> str:
    """A header value as one line of text, '' when absent or unreadable; never longer than ``limit``."""
    fast = _raw_text(ds, keyword)
    if fast is not None:
        fast = fast.replace("\x00", "")
        if "\\" in fast:
            fast = "\\".join(v.strip() for v in fast.split("\\"))
        return fast.strip()[:limit]
    try:
        value = ds.get(keyword)
    except Exception:  # noqa: BLE001 - a malformed value reads as absent
        return ""
    if value is None:
        return ""
    if isinstance(value, (list, tuple)) or value.__class__.__name__ == "MultiValue":
        value = "\\".join(str(v) for v in value)
    out = str(value).replace("\x00", "").strip()
    return out[:limit]


# pydicom's decoding of plain ASCII values (pydicom.values), by VR: what ``str()`` of each decoded value is.
_SPLIT_RSTRIP_VRS = frozenset(("SH", "LO", "UC"))  # convert_text: split on '\', then each value rstripped
_RSTRIP_SPLIT_VRS = frozenset(("CS", "AS"))  # convert_string (multi_string): rstripped, then split
_DATETIME_VRS = frozenset(("DA", "TM", "DT"))  # the same while pydicom's datetime_conversion is off
_SINGLE_VRS = frozenset(("LT", "ST", "UT"))  # convert_single_string: one value, rstripped
_PLAIN_UID = re.compile(r"[0-9A-Za-z.]+")
_PLAIN_IS = re.compile(r" *[+-]?[0-9]+ *")


def raw_strings(ds: Dataset, keyword: str) -> list[str] | None:
    """``str()`` of each value pydicom would decode the element ``keyword`` to, straight from its raw bytes
    without decoding it: ``[]`` when the element is absent, ``[""]`` when it is empty. None when only pydicom
    can say (already decoded, not plain ASCII, an escape sequence, a VR other than the file's dictionary one,
    a person name, a decimal, an unusual UID or integer string): the caller then asks pydicom.
    tests/prearchive/test_raw_strings.py compares this with pydicom on many values."""
    entry = _tag_of(keyword)
    if entry is None:
        return None
    tag, dictionary_vr = entry
    elem = ds._dict.get(tag)
    if elem is None:
        return []
    if type(elem) is not RawDataElement:
        return None
    raw = elem.value
    if not isinstance(raw, bytes) or (elem.VR is not None and elem.VR != dictionary_vr):
        return None
    if not raw:
        return [""]
    if not raw.isascii() or b"\x1b" in raw:
        return None
    text = raw.decode("ascii")
    vr = dictionary_vr
    if vr in _SPLIT_RSTRIP_VRS:
        return [v.rstrip("\0 ") for v in text.split("\\")]
    if vr in _RSTRIP_SPLIT_VRS or (vr in _DATETIME_VRS and not pydicom.config.datetime_conversion):
        return text.rstrip(" \x00").split("\\")
    if vr in _SINGLE_VRS:
        return [text.rstrip("\0 ")]
    if vr == "UI":
        values = text.rstrip("\0 ").split("\\")
        return values if all(_PLAIN_UID.fullmatch(v) for v in values) else None
    if vr == "IS" and not pydicom.config.use_IS_numpy:
        values = text.rstrip(" \x00").split("\\")
        return [v.strip() for v in values] if all(_PLAIN_IS.fullmatch(v) for v in values) else None
    return None


def uid(ds: Dataset, keyword: str) -> str:
    """A UID value, validated: '' when absent; HeaderError when it is not a plausible UID."""
    raw = text(ds, keyword, limit=10_000)
    if not raw:
        return ""
    if not UID_RE.match(raw):
        raise HeaderError("invalid_value", f"{keyword} is not a valid UID.")
    return raw


def safe_file_name(sop_instance_uid: str) -> str:
    return _SAFE_UID.sub("_", sop_instance_uid)[:120] + ".dcm"


def label_chars(value: str) -> str:
    """XNAT's Labels.toLabelChars: every character outside [\\w-] becomes '_'."""
    return LABEL_BAD_CHARS.sub("_", value or "")


def scan_dir(series_number: str, series_uid: str) -> str:
    """Restructurer.determineScanSubdir: the SeriesNumber if it is a valid file name, else the
    SeriesInstanceUID in label characters, else "NA". A leading '+' becomes '_'."""
    number = (series_number or "").strip()
    if number.startswith("+"):
        number = "_" + number[1:]
    if number and SCAN_DIR_RE.match(number) and number not in (".", "..") and len(number) <= 64:
        return number
    fallback = label_chars(series_uid)[:64]
    return fallback if fallback and fallback not in (".", "..") else "NA"


_RADIOPHARMACEUTICAL_SEQUENCE = 0x00540016


def radiopharmaceutical(ds: Dataset) -> str:
    if _RADIOPHARMACEUTICAL_SEQUENCE not in ds._dict:
        return ""
    try:
        seq = ds.get("RadiopharmaceuticalInformationSequence")
        if seq:
            return text(seq[0], "Radiopharmaceutical")
    except Exception:  # noqa: BLE001
        return ""
    return ""


def frames(ds: Dataset) -> int:
    """NumberOfFrames; 1 (unknown) when absent, not a number, or beyond what a row holds."""
    values = raw_strings(ds, "NumberOfFrames")
    if values is not None and all(map(_PLAIN_IS.fullmatch, values)):  # as below, without pydicom's decoding
        value = max(1, int(values[0])) if len(values) == 1 else 1
        return value if value < 2**31 else 1
    if values == [] or values == [""]:
        return 1
    try:
        value = max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError, OverflowError):
        return 1
    return value if value < 2**31 else 1


def int_or_none(ds: Dataset, keyword: str) -> int | None:
    values = raw_strings(ds, keyword)
    if values is not None and all(map(_PLAIN_IS.fullmatch, values)):  # as below, without pydicom's decoding
        return int(values[0]) if len(values) == 1 else None
    if values == [] or values == [""]:
        return None
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError, OverflowError):
        return None


def file_fields(ds: Dataset) -> dict[str, Any]:
    """The PrearchiveFile columns read from a dataset (UIDs already validated by the caller)."""
    series_number = text(ds, "SeriesNumber", 16)
    instance = int_or_none(ds, "InstanceNumber")
    if instance is not None and not (-(2**31) <= instance < 2**31):
        instance = None
    transfer = ""
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        transfer = text(meta, "TransferSyntaxUID")
    return {
        "sop_class_uid": text(ds, "SOPClassUID"),
        "series_number": series_number,
        "instance_number": instance,
        "modality": text(ds, "Modality", 16),
        "series_description": text(ds, "SeriesDescription", 255),
        "series_date": text(ds, "SeriesDate", 8),
        "series_time": text(ds, "SeriesTime", 16),
        "study_date": text(ds, "StudyDate", 8),
        "study_time": text(ds, "StudyTime", 16),
        "station_name": text(ds, "StationName"),
        "manufacturer": text(ds, "Manufacturer"),
        "manufacturer_model_name": text(ds, "ManufacturerModelName"),
        "protocol_name": text(ds, "ProtocolName"),
        "body_part_examined": text(ds, "BodyPartExamined"),
        "requested_procedure_description": text(ds, "RequestedProcedureDescription"),
        "image_type": text(ds, "ImageType", 255),
        "frames": frames(ds),
        "radiopharmaceutical": radiopharmaceutical(ds),
        "transfer_syntax_uid": transfer,
    }
