"""What the reviewer sees of DICOM files: a thumbnail of a scan's middle image, the header of a file, and
the flags of scans that may hold burned-in PHI. Reads only; nothing here writes or logs header values."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

THUMB_SIZE = 160
FULL_SIZE = 1024  # the enlarged view (?size=full) of the prearchive and archive pages
SECONDARY_CAPTURE_PREFIX = "1.2.840.10008.5.1.4.1.1.7"
FLAG_MODALITIES = ("SC", "OT", "DOC", "XC")
MAX_VALUE_CHARS = 200


def thumbnail_png(path: Path, size: int = THUMB_SIZE) -> bytes:
    """A PNG of the (middle frame of the) image, windowed by the header's WindowCenter/Width (else its
    min..max), at most ``size``
    pixels wide and high. Raises ValueError when the file has no pixel data this server can decode."""
    out = io.BytesIO()
    _image(path, size).save(out, format="PNG")
    return out.getvalue()


def montage_png(paths: list[Path], *, tiles: int = 16, tile: int = 128) -> bytes:
    """A grid of up to ``tiles`` images evenly spread over ``paths`` (files that cannot be shown are
    skipped). Raises ValueError when none can be shown."""
    if not paths:
        raise ValueError("no files")
    step = max(1, len(paths) / tiles)
    chosen = [paths[int(i * step)] for i in range(min(tiles, len(paths)))]
    images = []
    for path in chosen:
        try:
            images.append(_image(path, tile))
        except ValueError:
            continue
    if not images:
        raise ValueError("nothing to show")
    cols = min(4, len(images))
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("L", (cols * tile, rows * tile), 0)
    for i, image in enumerate(images):
        image = image.convert("L")
        x, y = (i % cols) * tile + (tile - image.width) // 2, (i // cols) * tile + (tile - image.height) // 2
        sheet.paste(image, (x, y))
    out = io.BytesIO()
    sheet.save(out, format="PNG")
    return out.getvalue()


def _first_number(value) -> float | None:
    if isinstance(value, (MultiValue, list, tuple)):
        value = value[0] if len(value) else None
    try:
        return None if value is None or value == "" else float(value)
    except (TypeError, ValueError):
        return None


def _window(ds: Dataset, data: np.ndarray) -> tuple[float, float]:
    """The display range: the header's WindowCenter/WindowWidth (first value), else the image's min..max."""
    center, width = _first_number(ds.get("WindowCenter")), _first_number(ds.get("WindowWidth"))
    if center is not None and width is not None and width > 0:
        return center - width / 2, center + width / 2
    return (float(data.min()), float(data.max())) if data.size else (0.0, 1.0)


def _image(path: Path, size: int) -> Image.Image:
    ds = dcmread(path)
    if "PixelData" not in ds:
        raise ValueError("no pixel data")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # noqa: BLE001 - compressed syntaxes without a decoder, broken data
        raise ValueError(type(exc).__name__) from None
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    if samples == 3:
        image = Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode="RGB")
    else:
        data = pixels.astype(np.float64)
        slope, intercept = float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0)
        data = data * slope + intercept
        lo, hi = _window(ds, data)
        scaled = np.clip((data - lo) / ((hi - lo) or 1.0), 0, 1) * 255
        if str(getattr(ds, "PhotometricInterpretation", "")) == "MONOCHROME1":
            scaled = 255 - scaled
        image = Image.fromarray(scaled.astype(np.uint8), mode="L")
    image.thumbnail((size, size))
    if size >= 512 and max(image.size) < 512:  # the enlarged view of a small image: scale it up
        factor = 512 // max(image.size)
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    if image.width < 64:  # tiny test images: scale up so the reviewer can see them
        factor = max(1, 96 // max(1, image.width))
        image = image.resize((image.width * factor, image.height * factor), Image.NEAREST)
    return image


def _value_text(element) -> str:
    if element.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN"):
        return f"<{element.VR} binary, {len(element.value or b'')} bytes>" if element.value is not None else ""
    value = element.value
    if isinstance(value, (list, tuple)) or element.VM > 1:
        text = "\\".join(str(v) for v in value)
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "…"


def header_rows(path: Path) -> list[dict]:
    """Every element of the header (file meta first, sequences nested), pixel data left out."""
    ds = dcmread(path, stop_before_pixels=True)
    rows: list[dict] = []

    def walk(dataset: Dataset, depth: int) -> None:
        for element in dataset:
            row = {"tag": f"({element.tag.group:04X},{element.tag.element:04X})", "name": element.name,
                   "keyword": element.keyword, "vr": element.VR, "depth": depth, "value": ""}
            if element.VR == "SQ":
                row["value"] = f"{len(element.value)} item(s)"
                rows.append(row)
                for n, item in enumerate(element.value, 1):
                    rows.append({"tag": "", "name": f"Item {n}", "keyword": "", "vr": "", "depth": depth + 1,
                                 "value": ""})
                    walk(item, depth + 2)
            else:
                row["value"] = _value_text(element)
                rows.append(row)

    if getattr(ds, "file_meta", None) is not None:
        walk(ds.file_meta, 0)
    walk(ds, 0)
    return rows


def burned_in_flags(*, modality: str, sop_class_uid: str, image_type: str, path: Path | None) -> list[str]:
    """Why a scan may carry burned-in PHI (empty: no sign of it)."""
    flags = []
    if modality in FLAG_MODALITIES:
        flags.append(f"modality {modality}")
    if sop_class_uid.startswith(SECONDARY_CAPTURE_PREFIX):
        flags.append("secondary capture")
    kinds = image_type.upper()
    if "SECONDARY" in kinds or "SCREEN" in kinds or "SAVE" in kinds:
        flags.append(f"image type {image_type}")
    if path is not None:
        try:
            ds = dcmread(path, stop_before_pixels=True, specific_tags=["BurnedInAnnotation", "ImageType"])
        except Exception:  # noqa: BLE001 - unreadable: the header view will say so
            ds = None
        if ds is not None and str(ds.get("BurnedInAnnotation", "")).strip().upper() == "YES":
            flags.append("Burned In Annotation YES")
        if ds is not None and not image_type and "ImageType" in ds:
            value = "\\".join(str(v) for v in ds.ImageType) if ds["ImageType"].VM > 1 else str(ds.ImageType)
            if any(k in value.upper() for k in ("SECONDARY", "SCREEN", "SAVE")):
                flags.append(f"image type {value}")
    return flags


# ------------------------------------------------------------------ labels that look like patient identifiers

_IDENTITY_TAGS = ["PatientName", "PatientID", "OtherPatientIDs"]
MIN_IDENTIFIER_CHARS = 3


def _squash(value: str) -> str:
    return "".join(ch for ch in str(value).casefold() if ch.isalnum())


def _identifiers(path: Path) -> dict[str, list[str]]:
    """The patient's name (whole and by component) and IDs of one file, squashed (case and punctuation
    dropped), read from the header only."""
    ds = dcmread(path, stop_before_pixels=True, specific_tags=_IDENTITY_TAGS)
    name = str(ds.get("PatientName", "") or "")
    parts = [p for p in name.replace("^", " ").replace("=", " ").split() if p]
    ids = [str(ds.get("PatientID", "") or "")]
    other = ds.get("OtherPatientIDs", "")
    ids += [str(v) for v in other] if isinstance(other, MultiValue) else [str(other or "")]
    found = {"name": [_squash(name)] + [_squash(p) for p in parts], "ID": [_squash(i) for i in ids]}
    return {k: [v for v in vs if len(v) >= MIN_IDENTIFIER_CHARS] for k, vs in found.items()}


def label_identifier_warnings(*, path: Path, labels: dict[str, str]) -> list[str]:
    """Warnings for labels equal to, or containing, the patient's name or ID in the file's header, e.g.
    {"subject": "Doe_John1"} -> ["The subject label contains the patient's name."]. The values themselves are
    never repeated in the message."""
    try:
        found = _identifiers(path)
    except Exception:  # noqa: BLE001 - an unreadable file: nothing to compare with
        return []
    warnings = []
    for what, label in labels.items():
        squashed = _squash(label)
        if not squashed:
            continue
        for kind, values in found.items():
            if any(squashed == v for v in values):
                warnings.append(f"The {what} label is the patient's {kind}.")
                break
            if any(v in squashed for v in values):
                warnings.append(f"The {what} label contains the patient's {kind}.")
                break
    return warnings
