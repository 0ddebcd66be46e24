"""Built-in functions that change the dataset (tag-path driven)."""
from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .context import Ctx
from .dates import midpoint_seconds, shift_by_vr, shift_date, shift_datetime
from .errors import ScriptRuntimeFault
from .functions import VOID, to_paths, to_str
from .tagpath import TagPath, sequences_of
from .uids import hash_uid, new_uid_with_prefix
from .values import assign_string, blank_element, element_string

_BINARY_VRS = frozenset("OB OD OF OL OV OW UN SQ".split())


def delete_path(ds: Dataset, path: TagPath) -> None:
    """``-path``: remove matching elements; for a path ending in ``[n]``/``[%]``, every element of the
    selected items, leaving the items themselves in place (empty), as XNAT 1.8.7+ does
    (SequenceOperationsTest.testStandardSequenceDeleteDE6, RemoveTagsTest.testRemoveTagsSequenceItem)."""
    if path.ends_with_item:
        for seq, index in path.find_items(ds):
            item = seq[index]
            for tag in list(item._dict):
                del item[tag]
        return
    for container, tag in path.find(ds):
        if tag in container._dict:
            del container[tag]


def _values_of(ctx: Ctx, container: Dataset, tag: int) -> list[str]:
    s = element_string(container, tag)
    return [] if s is None else s.split("\\")


def all_elements(ds: Dataset) -> Iterator[tuple[Dataset, int]]:
    """Every (container, tag) at any depth, file meta included for the top level."""
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        for tag in list(meta._dict):
            yield meta, tag
    yield from _walk(ds)


def _walk(ds: Dataset) -> Iterator[tuple[Dataset, int]]:
    for tag in list(ds._dict):
        yield ds, tag
    for seq in sequences_of(ds):
        for item in seq:
            yield from _walk(item)


# -- functions -----------------------------------------------------------------------------------
def f_set(ctx: Ctx, a: list[Any]) -> Any:
    (path,) = to_paths(a[0], ctx.dialect)
    value = to_str(ctx, a[1])
    for container, tag in path.targets_for_assign(ctx.ds):
        assign_string(container, tag, value)
    return VOID


def f_delete(ctx: Ctx, a: list[Any]) -> Any:
    for path in to_paths(a, ctx.dialect):
        delete_path(ctx.ds, path)
    return VOID


f_remove_tags = f_delete


def f_hash_uid_list(ctx: Ctx, a: list[Any]) -> Any:
    for path in to_paths(a, ctx.dialect):
        for container, tag in path.find(ctx.ds):
            if (tag >> 16) & 1 and 0x10 <= (tag & 0xFFFF) <= 0xFF:
                continue  # private creator element
            values = _values_of(ctx, container, tag)
            if values:
                assign_string(container, tag, "\\".join(hash_uid(v) or "" for v in values))
    return VOID


def f_map_referenced_uids(ctx: Ctx, a: list[Any]) -> Any:
    prefix = to_str(ctx, a[0])
    if not prefix:
        raise ScriptRuntimeFault("mapReferencedUIDs needs a UID prefix")
    uid_map = ctx.run.uid_map
    for path in to_paths(a[1:], ctx.dialect):
        for container, tag in path.find(ctx.ds):
            values = _values_of(ctx, container, tag)
            if not values:
                continue
            mapped = []
            for v in values:
                key = (prefix, v)
                new = uid_map.get(key)
                if new is None:
                    new = uid_map[key] = new_uid_with_prefix(prefix)
                mapped.append(new)
            assign_string(container, tag, "\\".join(mapped))
    return VOID


def _date_input(ctx: Ctx, v: Any) -> str | None:
    if isinstance(v, TagPath) and not v.singular:
        raise ScriptRuntimeFault("date tag path must name a single element")
    return to_str(ctx, v)


def f_shift_date(ctx: Ctx, a: list[Any]) -> Any:
    units = to_str(ctx, a[2]) if len(a) > 2 else "days"
    return shift_date(_date_input(ctx, a[0]), to_str(ctx, a[1]), units or "days")


def f_shift_datetime(ctx: Ctx, a: list[Any]) -> Any:
    units = to_str(ctx, a[2]) if len(a) > 2 else "seconds"
    return shift_datetime(_date_input(ctx, a[0]), to_str(ctx, a[1]), units or "seconds")


def _seconds(ctx: Ctx, n: Any, units: str) -> int:
    try:
        count = int(str(to_str(ctx, n)).strip())
    except ValueError:
        raise ScriptRuntimeFault("increment is not an integer") from None
    factor = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400, "weeks": 604800}.get(units.lower())
    if factor is None:
        raise ScriptRuntimeFault(f"unknown time unit '{units}'")
    return count * factor


def _shift_paths(ctx: Ctx, paths: list[TagPath], seconds: int) -> None:
    for path in paths:
        for container, tag in path.find(ctx.ds):
            vr = container[tag].VR
            values = _values_of(ctx, container, tag)
            if values:
                assign_string(container, tag, "\\".join(shift_by_vr(v, vr, seconds) for v in values))


def f_shift_datetime_sequence(ctx: Ctx, a: list[Any]) -> Any:
    _shift_paths(ctx, to_paths(a[1:], ctx.dialect), _seconds(ctx, a[0], "seconds"))
    return VOID


def f_shift_datetime_list(ctx: Ctx, a: list[Any]) -> Any:
    units = to_str(ctx, a[2]) if len(a) > 2 else "seconds"
    _shift_paths(ctx, to_paths(a[0], ctx.dialect), _seconds(ctx, a[1], units or "seconds"))
    return VOID


def f_retain_private_tags(ctx: Ctx, a: list[Any]) -> Any:
    keep: set[tuple[int, int]] = set()
    for path in to_paths(a, ctx.dialect):
        if not path.is_private:
            raise ScriptRuntimeFault(f"retainPrivateTags accepts private tags only, not {path.text}")
        for container, tag in path.find(ctx.ds):
            keep.add((id(container), tag))
    _retain(ctx.ds, keep)
    return VOID


def _retain(ds: Dataset, keep: set[tuple[int, int]]) -> None:
    d = ds._dict
    here = id(ds)
    kept_blocks = {(t >> 16, (t >> 8) & 0xFF) for (cid, t) in keep if cid == here}
    doomed = []
    for tag in list(d):
        group = tag >> 16
        if group & 1:
            if (here, tag) in keep:
                continue  # kept, and a kept private sequence keeps all it contains
            elem_no = tag & 0xFFFF
            if 0x10 <= elem_no <= 0xFF and (group, elem_no) in kept_blocks:
                continue
            doomed.append(tag)
    for tag in doomed:
        del ds[tag]
    for tag in list(d):
        if (tag >> 16) & 1:
            continue
        raw = d[tag]
        vr = raw.VR if raw.VR not in (None, "UN") else ds[tag].VR
        if vr == "SQ":
            for item in ds[tag].value or ():
                _retain(item, keep)


class Collected(list):  # type: ignore[type-arg]
    """Values gathered by collectValues[]; blankValues[] blanks them wherever they occur."""


def f_collect_values(ctx: Ctx, a: list[Any]) -> Any:
    collected = Collected()
    for path in to_paths(a, ctx.dialect):
        for container, tag in path.find(ctx.ds):
            if container[tag].VR in _BINARY_VRS:
                continue
            s = element_string(container, tag)
            if s is not None and s.strip():
                collected.append(s.strip())
    return collected


def _gather(ctx: Ctx, item: Any, wanted: set[str]) -> None:
    if isinstance(item, Collected):
        wanted.update(item)
    elif isinstance(item, list):
        for x in item:
            _gather(ctx, x, wanted)
    elif isinstance(item, TagPath):
        wanted.update(f_collect_values(ctx, [item]))
    elif isinstance(item, str):
        try:
            paths = to_paths(item, ctx.dialect)
        except ScriptRuntimeFault:
            if item.strip():
                wanted.add(item.strip())
        else:
            wanted.update(f_collect_values(ctx, paths))


def f_blank_values(ctx: Ctx, a: list[Any]) -> Any:
    wanted: set[str] = set()
    _gather(ctx, a, wanted)
    if not wanted:
        return VOID
    for container, tag in list(all_elements(ctx.ds)):
        if tag not in container._dict:
            continue
        elem = container[tag]
        if elem.VR in _BINARY_VRS:
            continue
        s = element_string(container, tag)
        if s is not None and s.strip() in wanted:
            blank_element(container, tag)
    return VOID


# -- scalePatientAgeAndDobFromStudyDate ----------------------------------------------------------
_PATIENT_AGE = 0x00101010
_PATIENT_BIRTH_DATE = 0x00100030
_STUDY_DATE = 0x00080020
_DAYS_IN_89_YEARS = 32506  # Java Math.round(365.24 * 89)
_AGE_CEILING = "089Y"
_AGE_NUMBER = re.compile(r"[+-]?[0-9]+")  # Java Integer.parseInt of the first three characters


def _every(ds: Dataset, tag: int) -> list[Dataset]:
    """Every dataset (the top one and every sequence item, at any depth) holding ``tag``."""
    return [container for container, t in _walk(ds) if t == tag]


def _age_years(text: str | None) -> int:
    """Whole years of an AS value as DicomEdit reads it (nnnY; D, W and M ages count 0 years)."""
    if not text:
        return 0
    number, unit = text[:3], text[3:4]
    if not (_AGE_NUMBER.fullmatch(number) and unit in ("Y", "M", "W", "D")):
        raise ScriptRuntimeFault("scalePatientAgeAndDobFromStudyDate: error parsing age in (0010,1010): "
                                 "expected nnnD, nnnW, nnnM or nnnY")
    return int(number) if unit == "Y" else 0


def f_scale_age_and_dob(ctx: Ctx, a: list[Any]) -> Any:
    """Patients older than 89 at the study: every Patient's Birth Date moves forward so the patient
    is 89 on the Study Date (they turn 89 the day after), and every Patient's Age becomes 089Y.

    Reads the top-level (0010,0030), (0008,0020) and (0010,1010) only; rewrites matching elements at
    any depth. With a birth date but no usable study date nothing at all changes (DicomEdit returns
    before looking at the age); without a birth date only the age rule applies.
    """
    ds = ctx.ds
    dob = midpoint_seconds(element_string(ds, _PATIENT_BIRTH_DATE))
    if dob is not None:
        study = midpoint_seconds(element_string(ds, _STUDY_DATE))
        if study is None:
            return VOID
        elapsed = study - dob
        days = elapsed // 86400 if elapsed >= 0 else -(-elapsed // 86400)
        shift = days - _DAYS_IN_89_YEARS
        if shift > 0:
            for container in _every(ds, _PATIENT_BIRTH_DATE):
                old = element_string(container, _PATIENT_BIRTH_DATE)
                if old:
                    assign_string(container, _PATIENT_BIRTH_DATE, shift_datetime(old, str(shift), "days"))
    if _age_years(element_string(ds, _PATIENT_AGE)) > 89:
        for container in _every(ds, _PATIENT_AGE):
            assign_string(container, _PATIENT_AGE, _AGE_CEILING)
    return VOID
