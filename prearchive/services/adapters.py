"""Thin adapters over other apps' engines: routing (prearchive/routing.py), the series import filters
(anonymization/filters.py) and the DicomEdit engine (anonymization/services.py). Each is imported where it is
used so that the prearchive works while those modules land; compiled filters and scripts are cached by text.
"""
from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Callable

logger = logging.getLogger(__name__)


class ScriptCompileError(Exception):
    """The site-wide anonymization script does not compile: no file may be taken in with it."""


# ------------------------------------------------------------------ routing


def routing_tags(receiver=None) -> tuple:
    try:
        from prearchive.routing import routing_tags as tags
    except ImportError:  # the routing module has not landed yet
        return ("PatientComments", "StudyComments", "AdditionalPatientHistory", "StudyDescription",
                "PatientName", "PatientID", "AccessionNumber")
    return tuple(tags(receiver))


def route(*, dataset, params: dict[str, str], receiver, resolve_project: Callable[[str], str | None]):
    """Route(project, subject, session, auto_archive, sources) for ``dataset``."""
    try:
        from prearchive.routing import route_dataset
    except ImportError:  # the routing module has not landed yet: XNAT's default passes only
        return _route_fallback(dataset=dataset, params=params, resolve_project=resolve_project)
    return route_dataset(dataset=dataset, params=params, receiver=receiver, resolve_project=resolve_project)


@dataclass
class _Route:
    project: str | None
    subject: str
    session: str
    auto_archive: bool | None
    sources: dict = field(default_factory=dict)


def _assignment(text: str, key: str) -> str | None:
    m = re.search(r"(?:\A|(?:.*[\s,;]))" + key + r"\s*:\s*([\w\-]*)(?:(?:[\s,;].*\Z)|\Z)", text,
                  re.IGNORECASE | re.DOTALL)
    return m.group(1) if m and m.group(1) else None


def _route_fallback(*, dataset, params, resolve_project) -> _Route:
    def value(keyword: str) -> str:
        v = dataset.get(keyword)
        return str(v).strip() if v is not None else ""

    comments = [value(k) for k in ("PatientComments", "StudyComments", "AdditionalPatientHistory")]
    found = {}
    for key in ("Project", "Subject", "Session", "AA"):
        found[key] = next((a for a in (_assignment(c, key) for c in comments if c) if a), None)
    project = None
    for candidate in (params.get("PROJECT_ID"), found["Project"], value("StudyDescription"),
                      value("AccessionNumber")):
        if candidate and (project := resolve_project(candidate)):
            break
    subject = params.get("SUBJECT_ID") or found["Subject"] or value("PatientName")
    session = params.get("EXPT_LABEL") or found["Session"] or value("PatientID")
    aa_text = params.get("AA") or params.get("auto-archive") or found["AA"] or ""
    aa = True if re.fullmatch(r"t(?:rue)?", aa_text, re.I) else False if re.fullmatch(r"f(?:alse)?", aa_text,
                                                                                       re.I) else None
    return _Route(project, subject or "", session or "", aa)


# ------------------------------------------------------------------ series import filters


@functools.lru_cache(maxsize=64)
def series_filter(mode: str, text: str):
    """The compiled filter for (mode, text), or None for an empty regex list (accepts everything)."""
    from anonymization.filters import filter_parse

    return filter_parse(mode=mode, text=text)


def filter_header_tags(mode: str, text: str) -> tuple:
    try:
        return tuple(series_filter(mode, text).header_tags)
    except Exception:  # noqa: BLE001 - a broken filter is reported when it is evaluated
        return ()


def filter_evaluate(*, mode: str, text: str, dataset) -> tuple[bool, str, str]:
    """(accepted, reason, modality). A filter that cannot be parsed or evaluated refuses the file: an
    admin asked for filtering, so letting everything through would be the unsafe choice."""
    try:
        decision = series_filter(mode, text).evaluate(dataset)
    except Exception as exc:  # noqa: BLE001
        logger.warning("series import filter failed: %s", type(exc).__name__)
        return False, f"The series import filter could not be applied ({type(exc).__name__}).", ""
    return bool(decision.accepted), str(decision.reason or ""), str(getattr(decision, "modality", "") or "")


# ------------------------------------------------------------------ DicomEdit


_LAST_SCRIPT: tuple[str, Any] | None = None  # (text, compiled): intake asks for the same script per file


def script_get(text: str):
    """The compiled site script (the engine caches by text). Raises ScriptCompileError."""
    global _LAST_SCRIPT
    last = _LAST_SCRIPT
    if last is not None and last[0] == text:
        return last[1]
    try:
        from anonymization.services import script_compile
    except ImportError:  # the service layer has not landed yet: the engine directly
        script_compile = _engine_compile
    try:
        script = script_compile(text=text)
    except Exception as exc:  # noqa: BLE001 - any failure to compile means: refuse
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ScriptCompileError(detail) from None
    _LAST_SCRIPT = (text, script)
    return script


def script_apply(script: Any, dataset, *, variables: dict[str, str], run=None) -> bool:
    """Apply in place; True when the script rejected the file. ``run``: the session's script context
    (services/script_state.py), whose memos every file of the session shares."""
    result = script.apply(dataset, variables=variables, run=run)
    return bool(getattr(result, "rejected", False))


@functools.lru_cache(maxsize=16)
def _engine_compile(*, text: str):
    from anonymization.dicomedit import parse

    return parse(text)
