"""Reading and writing element values as DicomEdit strings (dcm4che getString/setString semantics)."""
from __future__ import annotations

from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR, private_dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.valuerep import IS, DSdecimal, DSfloat, PersonName

from .errors import ScriptRuntimeFault

_IGNORE = config.IGNORE
_TEXT_VRS = frozenset(
    "AE AS CS DA DS DT IS LO LT PN SH ST TM UC UI UR UT".split()
)
_INT_VRS = frozenset("US SS UL SL UV SV".split())
_FLOAT_VRS = frozenset("FD FL".split())
_BYTES_VRS = frozenset("OB OD OF OL OV OW UN".split())


def format_number(x: Any) -> str:
    """One value as dcm4che prints it: DS/IS keep their text, integral floats drop ``.0``."""
    if type(x) is float:
        if x.is_integer() and abs(x) < 1e16:
            return str(int(x))
        return repr(x)
    return str(x)


def _one(x: Any) -> str:
    if isinstance(x, str):
        return x
    if isinstance(x, (IS, DSfloat, DSdecimal, PersonName)):
        return str(x)
    if isinstance(x, bytes):
        return x.decode("latin-1").rstrip("\0 ")
    return format_number(x)


def element_string(ds: Dataset, tag: int) -> str | None:
    """The element's value as one string (multiple values joined by ``\\``); None if absent or empty."""
    raw = ds._dict.get(tag)
    if raw is None:
        return None
    elem = ds[tag]
    value = elem.value
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, Sequence):
        return None
    if elem.VR == "AT":  # dcm4che prints a tag as 8 hex digits (SequenceOperationsTest: "00209056")
        tags = value if isinstance(value, (list, MultiValue, tuple)) else [value]
        return "\\".join(f"{int(t):08X}" for t in tags) or None
    if isinstance(value, (list, MultiValue, tuple)):
        if not value:
            return None
        return "\\".join(_one(v) for v in value)
    return _one(value)


def _vr_for_new(ds: Dataset, tag: int) -> str:
    if (tag >> 16) & 1:
        if tag & 0xFF00 == 0 and 0x10 <= (tag & 0xFFFF) <= 0xFF:
            return "LO"
        creator_tag = (tag & 0xFFFF0000) | ((tag >> 8) & 0xFF)
        creator = ds._dict.get(creator_tag)
        if creator is not None:
            try:
                vr = private_dictionary_VR(tag, str(ds[creator_tag].value).rstrip())
                return vr.split(" or ")[0]
            except KeyError:
                pass
        return "LO"
    try:
        return dictionary_VR(tag).split(" or ")[0]
    except KeyError:
        return "LO"


def convert(text: str, vr: str) -> Any:
    """A DicomEdit string as a pydicom value of ``vr``."""
    if vr in _TEXT_VRS:
        return text
    if vr in _INT_VRS:
        if text == "":
            return None
        try:
            parts = [int(float(p)) for p in text.split("\\")]
        except ValueError:
            raise ScriptRuntimeFault(f"value is not a number for VR {vr}") from None
        return parts[0] if len(parts) == 1 else parts
    if vr in _FLOAT_VRS:
        if text == "":
            return None
        try:
            fparts = [float(p) for p in text.split("\\")]
        except ValueError:
            raise ScriptRuntimeFault(f"value is not a number for VR {vr}") from None
        return fparts[0] if len(fparts) == 1 else fparts
    if vr == "AT":
        if text == "":
            return None
        try:
            tags = [int(p.strip("()").replace(",", ""), 16) for p in text.split("\\")]
        except ValueError:
            raise ScriptRuntimeFault("value is not a tag for VR AT") from None
        return tags[0] if len(tags) == 1 else tags
    if vr in _BYTES_VRS:
        data = text.encode("latin-1", "replace")
        return data + b"\0" if len(data) % 2 else data
    if vr == "SQ":
        raise ScriptRuntimeFault("cannot assign a string to a sequence")
    return text


def assign_string(ds: Dataset, tag: int, text: str | None) -> None:
    """Set (or create) element ``tag`` to ``text``; None stores an empty value."""
    if text is None:
        text = ""
    raw = ds._dict.get(tag)
    if raw is not None:
        vr = raw.VR
        if vr is None:
            vr = ds[tag].VR
    else:
        vr = _vr_for_new(ds, tag)
    elem = DataElement(tag, vr, convert(text, vr), validation_mode=_IGNORE)
    ds._dict[elem.tag] = elem  # keys must stay BaseTag for pydicom's writer


def blank_element(ds: Dataset, tag: int) -> None:
    """Keep the element and its VR, with an empty value."""
    elem = ds[tag]
    if elem.VR == "SQ":
        new = DataElement(tag, "SQ", Sequence(), validation_mode=_IGNORE)
        ds._dict[new.tag] = new
        return
    value: Any = b"" if elem.VR in _BYTES_VRS else ("" if elem.VR in _TEXT_VRS else None)
    new = DataElement(tag, elem.VR, value, validation_mode=_IGNORE)
    ds._dict[new.tag] = new
