"""Before/after view of what a script changes in one dataset (for the admin preview); stores nothing."""
from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass

from pydicom.datadict import keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from .context import RunContext
from .interpreter import Script
from .values import element_string

_BINARY = frozenset("OB OD OF OL OV OW UN".split())


@dataclass(frozen=True)
class TagChange:
    path: str  # e.g. "(0008,1115)[0]/(0008,1155)"
    keyword: str
    before: str | None  # None: absent
    after: str | None


@dataclass(frozen=True)
class Preview:
    rejected: bool
    changes: list[TagChange]


def flatten(ds: Dataset, prefix: str = "") -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    meta = getattr(ds, "file_meta", None) if not prefix else None
    for container in ([meta] if meta is not None else []) + [ds]:
        for tag in list(container._dict):
            elem = container[tag]
            key = f"{prefix}({tag >> 16:04X},{tag & 0xFFFF:04X})"
            if isinstance(elem.value, Sequence):
                out[key] = (tag, f"<sequence of {len(elem.value)} item(s)>")
                for i, item in enumerate(elem.value):
                    out.update(flatten(item, f"{key}[{i}]/"))
            elif elem.VR in _BINARY:
                size = len(elem.value) if elem.value is not None else 0
                digest = hashlib.sha1(bytes(elem.value or b"")).hexdigest()[:12]
                out[key] = (tag, f"<{size} bytes, sha1 {digest}>")
            else:
                out[key] = (tag, element_string(container, tag) or "")
    return out


def preview(script: Script, dataset: Dataset, variables: dict[str, str]) -> Preview:
    """Apply ``script`` to a copy of ``dataset``; list every element added, removed or changed."""
    work = copy.deepcopy(dataset)
    before = flatten(dataset)
    result = script.apply(work, variables=variables, run=RunContext(echo=lambda s: None))
    after = flatten(work)
    changes = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key), after.get(key)
        if old is None or new is None or old[1] != new[1]:
            tag = (old or new)[0]  # type: ignore[index]
            changes.append(TagChange(key, keyword_for_tag(tag) or "", old[1] if old else None,
                                     new[1] if new else None))
    return Preview(result.rejected, changes)
