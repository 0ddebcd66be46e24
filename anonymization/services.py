"""Anonymization services: compile, validate and apply DicomEdit scripts."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from pydicom.dataset import Dataset

from anonymization.dicomedit import (ApplyResult, DicomEditSyntaxError, RunContext, Script,
                                     parse)
from anonymization.dicomedit.preview import Preview, preview

_CACHE_SIZE = 64
_cache: OrderedDict[tuple[str, str | None, tuple[str, ...]], Script] = OrderedDict()
_lock = threading.Lock()


def script_compile(*, text: str, dialect: str | None = None, variables: Iterable[str] = ()) -> Script:
    """Parse, check and compile a script once; later calls with the same text reuse it.

    Raises DicomEditSyntaxError ("LINE:COL: message") for a bad script.
    """
    names = tuple(sorted(set(variables)))
    key = (hashlib.sha256(text.encode("utf-8")).hexdigest(), dialect, names)
    with _lock:
        script = _cache.get(key)
        if script is not None:
            _cache.move_to_end(key)
            return script
    script = parse(text, dialect=dialect, variables=names)
    with _lock:
        _cache[key] = script
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return script


def script_validate(*, text: str) -> None:
    """For forms and the admin: a bad script raises ValidationError("LINE:COL: message")."""
    try:
        script_compile(text=text)
    except DicomEditSyntaxError as e:
        raise ValidationError(str(e), code="dicomedit_syntax") from None


def dataset_anonymize(*, script: Script, dataset: Dataset, variables: dict[str, str],
                      run: RunContext | None = None, script_id: str = "1") -> ApplyResult:
    """Apply a compiled script to one dataset in place (DicomEditRuntimeError on failure)."""
    return script.apply(dataset, variables=variables, run=run, script_id=script_id)


def dataset_preview(*, script: Script, dataset: Dataset, variables: dict[str, str]) -> Preview:
    """Each tag the script would change in ``dataset`` (before, after); the dataset is left untouched."""
    return preview(script, dataset, variables)
