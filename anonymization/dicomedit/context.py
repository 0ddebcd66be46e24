"""Per-run and per-file state of script application."""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field

from pydicom.dataset import Dataset


def _stdout_echo(text: str) -> None:
    sys.stdout.write(text + "\n")


@dataclass
class RunContext:
    """State shared by every file of one run (one job, one command invocation).

    ``uid_map`` backs ``mapReferencedUIDs`` so an old UID maps to the same new UID in every file.
    ``allow_get_url`` must be turned on by the site before ``getURL`` may fetch anything;
    ``url_fetcher`` replaces the HTTP fetch (tests, or a site's own client).
    """

    uid_map: dict[tuple[str, str], str] = field(default_factory=dict)
    allow_get_url: bool = False
    url_fetcher: Callable[[str], str] | None = None
    echo: Callable[[str], None] = _stdout_echo


@dataclass
class ApplyResult:
    rejected: bool = False


class Ctx:
    """One application of a script to one dataset."""

    __slots__ = ("ds", "vars", "run", "dialect", "assigned")

    def __init__(self, ds: Dataset, variables: dict[str, object], run: RunContext, dialect: str) -> None:
        self.ds = ds
        self.vars = variables
        self.run = run
        self.dialect = dialect
        self.assigned: set[int] | None = set() if dialect == "4" else None
