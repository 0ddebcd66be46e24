"""``makeSessionLabel[...]``: XNAT's indexed session label (the ``v##`` of seed 004)."""
from __future__ import annotations

import re
from collections.abc import Iterable

_INDEXED = re.compile(r"(?P<open>[^#]*)(?P<index>#+)(?P<close>.*)", re.S)


def indexed_label(pattern: str, taken: Iterable[str]) -> str:
    """The first label of ``pattern`` not in ``taken``: the run of ``#`` is the visit number, tried from
    0 upwards and zero-padded to the run's length (XNAT's AbstractIndexedLabelFunction), so gaps are
    filled first. A pattern without ``#`` is returned as it is."""
    match = _INDEXED.fullmatch(pattern)
    if match is None:
        return pattern
    used = set(taken)
    width = len(match.group("index"))
    i = 0
    while True:
        label = f"{match.group('open')}{i:0{width}d}{match.group('close')}"
        if label not in used:
            return label
        i += 1
