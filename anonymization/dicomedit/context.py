"""Per-run and per-file state of script application.

State a site provides to functions (all optional, each defaults to empty):

* ``lookup_tables`` backs ``lookup[tableName, key]``: ``{tableName: {key: value}}``. Fill it directly or
  with :func:`load_lookup_table`, which reads DicomEdit's lookup-table file format (one
  ``tableName/key = value`` per line, ``//`` comment lines). A script that looks up a table the
  run was not given fails with a runtime error naming the line; a key missing from a given table
  yields null, as in DicomEdit.
* ``mapped_uids`` backs ``mapUID[value, prefix]``: the value -> new UID memo. It starts empty and
  fills as files are processed, so one value maps to one UID across every file of the run; a
  caller may pre-fill it (or keep it between runs) to make the mapping stable for longer.
* ``uid_map`` is the same kind of memo for ``mapReferencedUIDs``, keyed by (prefix, old UID).
* ``session_labels`` are the labels already taken in the project, for ``makeSessionLabel``'s ``##``.
* ``time_limit`` is the wall-clock time one application of a script to one file may take.

The two UID memos are what a run remembers between files: :meth:`RunContext.memos_export` and
:meth:`RunContext.memos_import` move them in and out as plain JSON-ready data, so a caller can keep one
context per session in a database and give every process that handles the session the same mapping.
"""
from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from pydicom.dataset import Dataset

from .limits import DEFAULT_TIME_LIMIT_S


def _stdout_echo(text: str) -> None:
    sys.stdout.write(text + "\n")


@dataclass
class RunContext:
    """State shared by every file of one run (one job, one command invocation).

    ``uid_map`` backs ``mapReferencedUIDs`` so an old UID maps to the same new UID in every file;
    ``mapped_uids`` does the same for ``mapUID`` (keyed by the mapped value, None for null);
    ``lookup_tables`` holds the tables ``lookup`` reads (see the module docstring).
    ``allow_get_url`` must be turned on by the site before ``getURL`` may fetch anything;
    ``url_fetcher`` replaces the HTTP fetch (tests, or a site's own client).
    ``session_labels`` (labels taken in the project) and ``time_limit`` (seconds per file): see the
    module docstring.
    """

    uid_map: dict[tuple[str, str], str] = field(default_factory=dict)
    mapped_uids: dict[str | None, str] = field(default_factory=dict)
    lookup_tables: dict[str, dict[str, str]] = field(default_factory=dict)
    allow_get_url: bool = False
    url_fetcher: Callable[[str], str] | None = None
    echo: Callable[[str], None] = _stdout_echo
    session_labels: Collection[str] = ()
    time_limit: float = DEFAULT_TIME_LIMIT_S

    def memos_export(self) -> dict[str, Any]:
        """The UID memos as JSON-ready data: ``{"uid_map": [[prefix, old, new], ...],
        "mapped_uids": [[value or None, new], ...]}``. The old values are original identifiers: store
        them as carefully as the files they came from."""
        return {"uid_map": [[p, old, new] for (p, old), new in self.uid_map.items()],
                "mapped_uids": [[value, new] for value, new in self.mapped_uids.items()]}

    def memos_import(self, memos: dict[str, Any]) -> None:
        """Add memos from :meth:`memos_export` (of this or another process); entries already here win,
        so a UID mapped once keeps its value."""
        for prefix, old, new in memos.get("uid_map", ()):
            self.uid_map.setdefault((prefix, old), new)
        for value, new in memos.get("mapped_uids", ()):
            self.mapped_uids.setdefault(value, new)


@dataclass
class ApplyResult:
    rejected: bool = False


class Ctx:
    """One application of a script to one dataset."""

    __slots__ = ("ds", "vars", "run", "dialect", "assigned", "deadline", "var_chars")

    def __init__(self, ds: Dataset, variables: dict[str, object], run: RunContext, dialect: str) -> None:
        self.ds = ds
        self.vars = variables
        self.run = run
        self.dialect = dialect
        self.assigned: set[int] | None = set() if dialect == "4" else None
        self.deadline = time.monotonic() + run.time_limit
        self.var_chars: dict[str, int] = {}


# -- lookup tables -------------------------------------------------------------------------------
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_JAVA_SPACE = "".join(chr(i) for i in range(33))  # Java's String.trim() strips every char <= ' '


def _jtrim(s: str) -> str:
    return s.strip(_JAVA_SPACE)


def _jsplit(s: str, sep: str) -> list[str]:
    """Java ``String.split`` on a literal: trailing empty strings are dropped."""
    parts = s.split(sep)
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def load_lookup_table(text: str, into: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """Read DicomEdit's lookup-table format into ``{tableName: {key: value}}`` (``into`` if given).

    Each line is ``tableName/key = value``; empty lines and lines starting with ``//`` are skipped,
    and so (as DicomEdit does) is any line without exactly one ``=`` and one ``/`` in its key part.
    Table name and value are trimmed; the key keeps spaces after the ``/``. A later line wins.
    """
    tables: dict[str, dict[str, str]] = {} if into is None else into
    for line in _LINE_BREAK.split(text):
        if not line or _jtrim(line).startswith("//"):
            continue
        tokens = _jsplit(line, "=")
        if len(tokens) != 2:
            continue
        key_tokens = _jsplit(_jtrim(tokens[0]), "/")
        if len(key_tokens) != 2:
            continue
        tables.setdefault(_jtrim(key_tokens[0]), {})[key_tokens[1]] = _jtrim(tokens[1])
    return tables
