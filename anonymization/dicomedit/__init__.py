"""DicomEdit 6.x and 4.2 for xnatlite: parse once, apply to many datasets. Pure Python over pydicom.

Site-provided state (lookup tables for ``lookup``, the ``mapUID`` memo, getURL permission) lives in
:class:`RunContext`; see :mod:`.context` for the fields and :func:`load_lookup_table` for the
lookup-table file format."""
from __future__ import annotations

from collections.abc import Iterable

from .context import ApplyResult, RunContext, load_lookup_table
from .errors import DicomEditError, DicomEditRuntimeError, DicomEditSyntaxError
from .interpreter import Script
from .parser import KNOWN_VERSIONS, XNAT_VARIABLES, detect_dialect, parse_program
from .uids import hash_uid

__all__ = [
    "ApplyResult", "DicomEditError", "DicomEditRuntimeError", "DicomEditSyntaxError", "KNOWN_VERSIONS",
    "RunContext", "Script", "XNAT_VARIABLES", "detect_dialect", "hash_uid", "load_lookup_table", "parse",
]


def parse(text: str, *, dialect: str | None = None, variables: Iterable[str] = ()) -> Script:
    """Parse, check and compile ``text``. ``dialect`` ("6"/"4") overrides detection; ``variables``
    names extra variables the caller will supply (beyond project, subject, session, modalityLabel)."""
    return Script(parse_program(text, dialect=dialect, variables=variables), text)
