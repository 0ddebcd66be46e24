"""alterPixels: blank a rectangle of uncompressed pixel data and record the cleaning."""
from __future__ import annotations

from typing import Any

import numpy as np
from pydicom import config
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from .context import Ctx
from .errors import ScriptRuntimeFault
from .functions import VOID, to_str

CLEAN_PIXEL_CODE = ("113101", "DCM", "Clean Pixel Data Option")
BURNED_IN_TEXT_NOTE = "Burned in text blacked out"


def _params(text: str | None, what: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        try:
            out[key.strip().lower()] = int(float(value.strip()))
        except ValueError:
            raise ScriptRuntimeFault(f"alterPixels: bad {what} parameter '{key.strip()}'") from None
        if not sep:
            raise ScriptRuntimeFault(f"alterPixels: bad {what} parameters")
    return out


def f_alter_pixels(ctx: Ctx, a: list[Any]) -> Any:
    shape = (to_str(ctx, a[0]) or "").strip().lower()
    shape_params = _params(to_str(ctx, a[1]), "shape")
    fill = (to_str(ctx, a[2]) or "").strip().lower()
    fill_params = _params(to_str(ctx, a[3]), "fill")
    if shape != "rectangle":
        raise ScriptRuntimeFault(f"alterPixels: unsupported shape '{shape}'")
    if fill != "solid":
        raise ScriptRuntimeFault(f"alterPixels: unsupported fill '{fill}'")
    try:
        left, top, right, bottom = (shape_params[k] for k in ("l", "t", "r", "b"))
    except KeyError:
        raise ScriptRuntimeFault("alterPixels: rectangle needs l, t, r and b") from None
    value = fill_params.get("v", 0)
    ds = ctx.ds
    if 0x7FE00010 not in ds._dict:
        return VOID  # not an image: nothing to clean
    _fill_rectangle(ds, left, top, right, bottom, value)
    _record_cleaning(ds)
    _explicit_little_endian(ds)
    return VOID


def _explicit_little_endian(ds: Dataset) -> None:
    """Edited pixels are written Explicit VR Little Endian, as XNAT does ("Anon with pixel edits always
    results in EVLE data", UidsTest.testTransferSyntax): an Implicit VR Little Endian file changes its
    transfer syntax (the pixel bytes are the same); Explicit VR Little Endian stays."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None and getattr(meta, "TransferSyntaxUID", None) == ImplicitVRLittleEndian:
        meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _fill_rectangle(ds: Dataset, left: int, top: int, right: int, bottom: int, value: int) -> None:
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    if ts is not None and ts.is_compressed:
        raise ScriptRuntimeFault("alterPixels needs uncompressed pixel data")
    rows, cols = int(ds.Rows), int(ds.Columns)
    bits = int(ds.BitsAllocated)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    planar = int(getattr(ds, "PlanarConfiguration", 0) or 0)
    signed = int(getattr(ds, "PixelRepresentation", 0) or 0) == 1
    if bits not in (8, 16, 32):
        raise ScriptRuntimeFault(f"alterPixels: unsupported BitsAllocated {bits}")
    big_endian = ts is not None and ts == "1.2.840.10008.1.2.2"
    dtype = np.dtype(f"{'i' if signed else 'u'}{bits // 8}").newbyteorder(">" if big_endian else "<")
    raw = ds.PixelData
    count = rows * cols * samples * frames
    arr = np.frombuffer(raw, dtype=dtype, count=count).copy()
    if samples > 1 and planar == 1:
        arr = arr.reshape(frames, samples, rows, cols)
        region = arr[:, :, max(top, 0):max(bottom, 0), max(left, 0):max(right, 0)]
    else:
        arr = arr.reshape(frames, rows, cols, samples)
        region = arr[:, max(top, 0):max(bottom, 0), max(left, 0):max(right, 0), :]
    info = np.iinfo(dtype)
    region[...] = min(max(value, info.min), info.max)
    data = arr.tobytes()
    if len(raw) > len(data):
        data += raw[len(data):]
    ds.PixelData = data


def _record_cleaning(ds: Dataset) -> None:
    ds.add_new(0x00280301, "CS", "NO")
    method = ds.get((0x0012, 0x0063))
    if method is None or method.value in (None, "", []):
        ds.add_new(0x00120063, "LO", BURNED_IN_TEXT_NOTE)
    else:
        old = list(method.value) if not isinstance(method.value, str) else [method.value]
        ds.add_new(0x00120063, "LO", [*old, BURNED_IN_TEXT_NOTE])
    append_code(ds, *CLEAN_PIXEL_CODE)


def _text(tag: int, vr: str, value: str) -> DataElement:
    return DataElement(tag, vr, value, already_converted=True, validation_mode=config.IGNORE)


def append_code(ds: Dataset, value: str, scheme: str, meaning: str, version: str | None = None) -> None:
    """Append one code item to (0012,0064) De-identification Method Code Sequence."""
    item = Dataset()
    d = item._dict
    for elem in (_text(0x00080100, "SH", value), _text(0x00080102, "SH", scheme),
                 _text(0x00080103, "SH", version) if version is not None else None,
                 _text(0x00080104, "LO", meaning)):
        if elem is not None:
            d[elem.tag] = elem
    if 0x00120064 in ds._dict:
        seq = ds[0x00120064].value
        if isinstance(seq, Sequence):
            seq.append(item)
            return
    seq_elem = DataElement(0x00120064, "SQ", Sequence([item]), validation_mode=config.IGNORE)
    ds._dict[seq_elem.tag] = seq_elem
