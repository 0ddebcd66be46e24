"""XNAT's stored DICOM file names: ``dicomFileNameTemplate`` (reference/xnat.md §1, §7).

``${Keyword}`` is the value of that DICOM attribute in the stored file (after the site script), and
``${HashSOPClassUIDWithSOPInstanceUID}`` a short hash of both UIDs, which keeps two instances apart when the
other parts agree. xnatlite never keeps a name from the upload (an archive's entry names may carry patient
names): every stored file is named by the template, as XNAT does with ``rename=true``. Characters outside
``[A-Za-z0-9._-]`` become ``_``; a template that renders to nothing falls back to the SOP Instance UID.
"""
from __future__ import annotations

import hashlib
import re
from functools import lru_cache

from pydicom.datadict import keyword_dict
from pydicom.multival import MultiValue

from .headers import raw_strings

HASH_NAME = "HashSOPClassUIDWithSOPInstanceUID"
_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
MAX_NAME = 200
MSG_UNKNOWN = "Unknown name in the template: ${{{name}}} (use DICOM keywords, or " + HASH_NAME + ")."


def template_check(template: str) -> None:
    """Raise ValueError naming the first ``${...}`` that is neither a DICOM keyword nor the hash."""
    for name in _PLACEHOLDER.findall(template):
        if name != HASH_NAME and name not in keyword_dict:
            raise ValueError(MSG_UNKNOWN.format(name=name))
    if "/" in template or "\\" in template:
        raise ValueError("The template may not contain a path separator.")


@lru_cache(maxsize=8)
def _parts(template: str) -> tuple[tuple[str, str], ...]:
    """The template as (literal, placeholder) pairs, parsed once per template text."""
    out, last = [], 0
    for match in _PLACEHOLDER.finditer(template):
        out.append((template[last:match.start()], match.group(1)))
        last = match.end()
    out.append((template[last:], ""))
    return tuple(out)


def _value(ds, name: str) -> str:
    if name == HASH_NAME:
        both = f"{_value(ds, 'SOPClassUID')}{_value(ds, 'SOPInstanceUID')}"
        return hashlib.sha256(both.encode("ascii", "replace")).hexdigest()[:12]
    values = raw_strings(ds, name)  # the plain value without pydicom's decoding (intake names every file)
    if values is None:
        values = _decoded(ds, name)
    return "_".join(values)


def _decoded(ds, name: str) -> list[str]:
    """The values as pydicom decodes them; a value it cannot decode (IS "1e400") is its raw text."""
    try:
        value = ds.get(name)
    except (ValueError, TypeError, OverflowError):
        raw = ds.get_item(name)
        raw_value = getattr(raw, "value", None)
        return [raw_value.decode("ascii", "replace").strip(" \x00")] if isinstance(raw_value, bytes) else []
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


def stored_file_name(ds, *, template: str, sop_instance_uid: str) -> str:
    """The file name (``.dcm``) of a stored instance under ``template``."""
    name = "".join(literal + (_value(ds, ph) if ph else "") for literal, ph in _parts(template or ""))
    name = _UNSAFE.sub("_", name).strip("._-")
    if not name:
        name = _UNSAFE.sub("_", sop_instance_uid) or "instance"
    name = name[:MAX_NAME]
    return name if name.lower().endswith(".dcm") else name + ".dcm"
