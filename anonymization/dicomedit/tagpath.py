"""Tag matchers and tag paths, compiled once and resolved against pydicom datasets.

A path is a tuple of steps. A tag step is ``("tag", matcher, index)`` where index is None (no index:
every item when the step is followed by more steps), an int (0-based item) or ``ALL`` (``[%]``). Level
wildcards are ``("star",)`` (any depth >= 0), ``("plus",)`` (depth >= 1) and ``("dot",)`` (one level).
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from .errors import ScriptRuntimeFault

ALL = -1
_FILE_META_GROUP = 0x0002


def _digit_mask(ch: str) -> tuple[int, int]:
    """(mask, value) for one hex-digit position of a tag pattern."""
    if ch in "Xx":
        return 0x0, 0x0
    if ch == "#":
        return 0x1, 0x1
    if ch == "@":
        return 0x1, 0x0
    return 0xF, int(ch, 16)


def _pattern(chars: str) -> tuple[int, int]:
    mask = value = 0
    for ch in chars:
        m, v = _digit_mask(ch)
        mask = (mask << 4) | m
        value = (value << 4) | v
    return mask, value


class TagMatcher:
    """One tag of a path: public ``(gggg,eeee)``, DE4 numeric private, or ``(gggg,{creator}ee)``."""

    __slots__ = ("text", "creator", "group_mask", "group_value", "elem_mask", "elem_value", "mask",
                 "value", "exact", "wildcard", "private")

    def __init__(self, group: str, creator: str | None, element: str, text: str) -> None:
        self.text = text
        self.creator = creator
        self.group_mask, self.group_value = _pattern(group)
        self.elem_mask, self.elem_value = _pattern(element)
        self.wildcard = self.group_mask != 0xFFFF or self.elem_mask != (0xFF if creator else 0xFFFF)
        self.private = creator is not None or bool(self.group_value & 1)
        if creator is None:
            self.mask = (self.group_mask << 16) | self.elem_mask
            self.value = (self.group_value << 16) | self.elem_value
            self.exact = None if self.wildcard else self.value
        else:
            self.mask = self.value = 0
            self.exact = None

    def may_be_file_meta(self) -> bool:
        return (_FILE_META_GROUP & self.group_mask) == self.group_value and self.creator is None

    # -- lookup -------------------------------------------------------------------------------
    def find(self, ds: Dataset) -> list[int]:
        """Tags of ``ds`` (top level only) that this matcher selects."""
        d = ds._dict
        if self.exact is not None:
            return [self.exact] if self.exact in d else []
        if self.creator is None:
            mask, value = self.mask, self.value
            return [t for t in d if (t & mask) == value]
        found: list[int] = []
        for group, block in creator_blocks(ds, self.group_mask, self.group_value, self.creator):
            if self.elem_mask == 0xFF:
                tag = (group << 16) | (block << 8) | self.elem_value
                if tag in d:
                    found.append(tag)
            else:
                lo = (group << 16) | (block << 8)
                em, ev = self.elem_mask, self.elem_value
                found.extend(t for t in d if lo <= t <= lo + 0xFF and ((t & 0xFF) & em) == ev)
        return found

    def creatable(self) -> bool:
        return not self.wildcard

    def create_tag(self, ds: Dataset) -> int:
        """The tag to create for an exact matcher; reserves a private creator block if needed."""
        if self.creator is None:
            return self.value
        group = self.group_value
        blocks = creator_blocks(ds, 0xFFFF, group, self.creator)
        if blocks:
            block = blocks[0][1]
        else:
            d = ds._dict
            for block in range(0x10, 0x100):
                if ((group << 16) | block) not in d:
                    break
            else:
                raise ScriptRuntimeFault(f"no free private creator block in group {group:04X}")
            ds.add_new((group << 16) | block, "LO", self.creator)
        return (group << 16) | (block << 8) | self.elem_value


def creator_blocks(ds: Dataset, group_mask: int, group_value: int, creator: str) -> list[tuple[int, int]]:
    """(group, block) pairs whose private creator element holds ``creator`` (trailing spaces ignored)."""
    out: list[tuple[int, int]] = []
    for tag in ds._dict:
        elem_no = tag & 0xFFFF
        if 0x10 <= elem_no <= 0xFF and (tag >> 16) & 1 and ((tag >> 16) & group_mask) == group_value:
            value = ds[tag].value
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if isinstance(value, str) and value.rstrip(" \0") == creator:
                out.append((tag >> 16, elem_no))
    return out


def sequences_of(ds: Dataset) -> Iterator[Sequence]:
    """Every sequence value among the top-level elements of ``ds``."""
    d = ds._dict
    for tag in list(d):
        raw = d.get(tag)
        if raw is None:
            continue
        vr = raw.VR
        if vr is None or vr == "UN":
            vr = ds[tag].VR
        if vr == "SQ":
            value = ds[tag].value
            if value:
                yield value


def _items(seq: Sequence, index: int | None) -> list[Dataset]:
    if index is None or index == ALL:
        return list(seq)
    if 0 <= index < len(seq):
        return [seq[index]]
    return []


class TagPath:
    """A compiled tag path; ``text`` is the source spelling (for messages, never values)."""

    __slots__ = ("steps", "text", "singular", "last", "simple")

    def __init__(self, steps: tuple[tuple[Any, ...], ...], text: str) -> None:
        self.steps = steps
        self.text = text
        self.last = steps[-1]
        self.singular = all(
            s[0] == "tag" and not s[1].wildcard and s[2] != ALL for s in steps
        )
        # A single exact public tag: the fast path for most scripts.
        self.simple = (
            len(steps) == 1 and steps[0][0] == "tag" and steps[0][1].exact is not None and steps[0][2] is None
            and (steps[0][1].exact >> 16) != _FILE_META_GROUP
        )

    @property
    def ends_with_item(self) -> bool:
        return self.last[0] == "tag" and self.last[2] is not None

    @property
    def is_private(self) -> bool:
        return self.last[0] == "tag" and self.last[1].private

    # -- resolution ---------------------------------------------------------------------------
    def _roots(self, ds: Dataset, create: bool = False) -> list[Dataset]:
        first = self.steps[0]
        if first[0] == "tag" and first[1].may_be_file_meta() and len(self.steps) == 1:
            meta = getattr(ds, "file_meta", None)
            if meta is None and create and first[1].exact is not None:
                meta = ds.file_meta = FileMetaDataset()
            if meta is not None:
                return [ds, meta] if first[1].wildcard else [meta]
        return [ds]

    def find(self, ds: Dataset) -> list[tuple[Dataset, int]]:
        """Existing elements selected by the path, as (containing dataset, tag)."""
        if self.simple:
            tag = self.steps[0][1].exact
            return [(ds, tag)] if tag in ds._dict else []
        out: list[tuple[Dataset, int]] = []
        for root in self._roots(ds):
            self._find(root, 0, out, None)
        return out

    def find_items(self, ds: Dataset) -> list[tuple[Sequence, int]]:
        """For a path ending in ``[n]``/``[%]``: the (sequence, item index) pairs selected."""
        out: list[tuple[Dataset, int]] = []
        items: list[tuple[Sequence, int]] = []
        self._find(ds, 0, out, items)
        return items

    def _find(self, ds: Dataset, i: int, out: list[tuple[Dataset, int]],
              items: list[tuple[Sequence, int]] | None) -> None:
        step = self.steps[i]
        kind = step[0]
        last = i == len(self.steps) - 1
        if kind == "tag":
            matcher, index = step[1], step[2]
            for tag in matcher.find(ds):
                if last:
                    if items is None:
                        out.append((ds, tag))
                        continue
                    seq = ds[tag].value
                    if not isinstance(seq, Sequence):
                        continue
                    if index == ALL:
                        items.extend((seq, n) for n in range(len(seq)))
                    elif index is not None and 0 <= index < len(seq):
                        items.append((seq, index))
                    continue
                seq = ds[tag].value
                if isinstance(seq, Sequence):
                    for item in _items(seq, index):
                        self._find(item, i + 1, out, items)
        elif kind == "star":
            self._find(ds, i + 1, out, items)
            for seq in sequences_of(ds):
                for item in seq:
                    self._find(item, i, out, items)
        elif kind == "plus":
            for seq in sequences_of(ds):
                for item in seq:
                    self._star_or_next(item, i, out, items)
        else:  # dot
            for seq in sequences_of(ds):
                for item in seq:
                    self._find(item, i + 1, out, items)

    def _star_or_next(self, ds: Dataset, i: int, out: list[tuple[Dataset, int]],
                      items: list[tuple[Sequence, int]] | None) -> None:
        # after one level consumed by '+', behave like '*'
        self._find(ds, i + 1, out, items)
        for seq in sequences_of(ds):
            for item in seq:
                self._star_or_next(item, i, out, items)

    def targets_for_assign(self, ds: Dataset) -> list[tuple[Dataset, int]]:
        """Elements to assign with ``:=``: existing matches, and creatable ones made on the way."""
        if self.simple:
            return [(ds, self.steps[0][1].exact)]
        out: list[tuple[Dataset, int]] = []
        for root in self._roots(ds, create=True):
            self._assign(root, 0, out)
        return out

    def _assign(self, ds: Dataset, i: int, out: list[tuple[Dataset, int]]) -> None:
        step = self.steps[i]
        if step[0] != "tag":
            # level wildcards reach only what exists
            found: list[tuple[Dataset, int]] = []
            sub = TagPath(self.steps[i:], self.text)
            sub._find(ds, 0, found, None)
            out.extend(found)
            return
        matcher, index = step[1], step[2]
        last = i == len(self.steps) - 1
        tags = matcher.find(ds)
        if not tags and matcher.creatable():
            tags = [matcher.create_tag(ds)]
            if not last:
                ds.add_new(tags[0], "SQ", Sequence())
        for tag in tags:
            if last:
                out.append((ds, tag))
                continue
            seq = ds[tag].value
            if not isinstance(seq, Sequence):
                continue
            if index is None or (isinstance(index, int) and index >= 0):
                want = 0 if index is None else index
                while len(seq) <= want:
                    seq.append(Dataset())
            for item in _items(seq, index):
                self._assign(item, i + 1, out)
