"""Thin adapters over other apps' engines: routing (prearchive/routing.py), the series import filters
(anonymization/filters.py) and the DicomEdit engine (anonymization/services.py). Each is imported where it is
used so that the prearchive works while those modules land; compiled filters and scripts are cached by text.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Callable

logger = logging.getLogger(__name__)


class ScriptCompileError(Exception):
    """The site-wide anonymization script does not compile: no file may be taken in with it."""


# ------------------------------------------------------------------ routing


def routing_tags() -> tuple:
    try:
        from prearchive.routing import ROUTING_TAGS
    except ImportError:  # the routing module has not landed yet
        return ("PatientComments", "StudyComments", "AdditionalPatientHistory", "StudyDescription",
                "PatientName", "PatientID", "AccessionNumber")
    return tuple(ROUTING_TAGS)


def route(*, dataset, params: dict[str, str], receiver, resolve_project: Callable[[str], str | None]):
    """Route(project, subject, session, auto_archive, sources) for ``dataset``."""
    from prearchive.routing import route_dataset

    return route_dataset(dataset=dataset, params=params, receiver=receiver, resolve_project=resolve_project)


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


def script_get(text: str):
    """The compiled site script (the engine caches by text). Raises ScriptCompileError."""
    from anonymization.services import script_compile

    try:
        return script_compile(text=text)
    except Exception as exc:  # noqa: BLE001 - any failure to compile means: refuse
        detail = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise ScriptCompileError(detail) from None


def script_apply(script: Any, dataset, *, variables: dict[str, str]) -> bool:
    """Apply in place; True when the script rejected the file."""
    result = script.apply(dataset, variables=variables)
    return bool(getattr(result, "rejected", False))
