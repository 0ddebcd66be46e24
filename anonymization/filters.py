"""Series import filters (reference/xnat.md §6): blacklist, whitelist and modality map, on pydicom Datasets.

Pure Python, no Django. A filter is compiled once by :func:`filter_parse` and then evaluated per file with
:meth:`SeriesFilter.evaluate`, which only reads the tags in :attr:`SeriesFilter.header_tags` (so the caller
can read headers with ``dcmread(..., stop_before_pixels=True, specific_tags=...)``).

Regex lists (``blacklist``/``whitelist``), as XNAT's ``RegExBasedSeriesImportFilter``:
  * one pattern a line; lines split on real newlines or a literal backslash-n, then trimmed;
  * blank lines and lines starting with ``#`` are ignored;
  * ``[X]`` switches the header for the following lines (``(0008,103E)``, ``0008,103E`` or a keyword such
    as ``BurnedInAnnotation``); the default header is SeriesDescription (0008,103E);
  * ``EXISTS`` matches when the header is present (even empty), ``!EXISTS`` when it is absent;
  * patterns are Java regexes, approximated with Python ``re`` (CASE_INSENSITIVE and ASCII classes as in
    Java, a few Java-only constructs translated) and matched with ``search`` (Java ``find()``).
  Whitelist: accepted iff any pattern matches. Blacklist: rejected iff any pattern matches.

Modality map (``ModalityMapSeriesImportFilter``): lines ``KEY: <JavaScript boolean expression>`` (first ``:``
splits). Reserved keys ``enabled, strict, projectId, default, mode`` are options; ``exclude`` true rejects the
file; otherwise the first key whose expression is true is the modality, else ``default``, else ``"MR"``.
``#Keyword#`` placeholders are replaced by the header's value (``""`` when missing, a refusal when ``strict:
true``). Unlike XNAT, quote and backslash characters in a value are written as ``\\uXXXX`` escapes, so a value
cannot close a quoted string and turn into code. Expressions run in :mod:`anonymization.jsengine`'s sandbox;
an expression that fails, does not return a boolean, runs out of time or memory refuses the file.

Reasons name the rule (mode, line, header), never a header value: they may be logged and shown.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
import threading
from typing import Any

from pydicom.datadict import keyword_for_tag, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

from anonymization.dicomedit.jregex import java_regex_to_python
from anonymization.jsengine import TRUE, JsResult, JsSandbox, check_syntax

MODES = ("blacklist", "whitelist", "modalityMap")
DEFAULT_TAG = 0x0008103E  # SeriesDescription
RESERVED_KEYS = ("enabled", "strict", "projectId", "default", "mode")
EXCLUDE_KEY = "exclude"
DEFAULT_MODALITY = "MR"
MAX_TEXT_CHARS = 100_000
INVALID_PATTERNS = "The series import filter contains the following invalid pattern(s): "
INVALID_MAP = "The modality map contains the following error(s): "

_SANDBOX_LOCK = threading.Lock()
_LINE_SPLIT = re.compile(r"\r\n|\r|\n|\\n")
_PLACEHOLDER = re.compile(r"#([A-Za-z][A-Za-z0-9]*)#")
_MAP_KEY = re.compile(r"[A-Za-z][\w\-]*\Z")
_JS_UNSAFE = re.compile("[\\\\'\"`$/\x00-\x1f\x7f\u2028\u2029]")


class FilterError(ValueError):
    """The filter text does not compile. The message names every bad line (by number)."""


@dataclass(frozen=True)
class FilterDecision:
    accepted: bool
    reason: str
    modality: str | None = None


@dataclass(frozen=True)
class FilterConfig:
    """A filter as XNAT stores it (the ``seriesImportFilter`` config's JSON)."""

    mode: str = "blacklist"
    text: str = ""
    enabled: bool = True
    project_id: str | None = None


@dataclass(frozen=True)
class _Rule:
    line: int
    tag: int
    kind: str  # "regex" | "exists" | "absent"
    pattern: re.Pattern[str] | None = None


@dataclass(frozen=True)
class _Expr:
    line: int
    key: str
    parts: tuple[str | int, ...]  # literal JavaScript text and tags to substitute, in order


@dataclass
class SeriesFilter:
    mode: str
    text: str
    rules: tuple[_Rule, ...] = ()
    exprs: tuple[_Expr, ...] = ()  # modality map: exclude first (if any), then the keys in order
    options: dict[str, str] = field(default_factory=dict)
    header_tags: frozenset[int] = frozenset()
    _sandbox: JsSandbox | None = field(default=None, repr=False, compare=False)

    @property
    def enabled(self) -> bool:
        return self.options.get("enabled", "true").lower() != "false"

    @property
    def strict(self) -> bool:
        return self.options.get("strict", "false").lower() == "true"

    def evaluate(self, dataset: Dataset) -> FilterDecision:
        if not self.enabled:
            return FilterDecision(True, f"{self.mode} filter is disabled")
        if self.mode == "modalityMap":
            return self._evaluate_map(dataset)
        return self._evaluate_list(dataset)

    def find_modality(self, dataset: Dataset) -> str | None:
        """The modality a modality map gives ``dataset`` (None for regex lists or a refused file)."""
        return self.evaluate(dataset).modality

    def close(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()

    # ------------------------------------------------------------------ regex lists

    def _evaluate_list(self, dataset: Dataset) -> FilterDecision:
        whitelist = self.mode == "whitelist"
        values: dict[int, str | None] = {}
        for rule in self.rules:
            if rule.tag not in values:
                values[rule.tag] = header_value(dataset, rule.tag)
            value = values[rule.tag]
            if rule.kind == "exists":
                hit = value is not None
            elif rule.kind == "absent":
                hit = value is None
            else:
                hit = value is not None and rule.pattern is not None and rule.pattern.search(value) is not None
            if hit:
                what = f"{self.mode} line {rule.line} matched {header_name(rule.tag)}"
                return FilterDecision(whitelist, what)
        if whitelist:
            return FilterDecision(False, "whitelist: no pattern matched")
        return FilterDecision(True, "blacklist: no pattern matched")

    # ------------------------------------------------------------------ modality map

    def _evaluate_map(self, dataset: Dataset) -> FilterDecision:
        sources: list[str] = []
        for expr in self.exprs:
            parts: list[str] = []
            for part in expr.parts:
                if isinstance(part, str):
                    parts.append(part)
                    continue
                value = header_value(dataset, part)
                if value is None and self.strict:
                    return FilterDecision(
                        False, f"modality map line {expr.line} ({expr.key}): {header_name(part)} is missing "
                               "and the map is strict")
                parts.append(js_escape(value or ""))
            sources.append("".join(parts))
        if self._sandbox is None:
            with _SANDBOX_LOCK:
                if self._sandbox is None:
                    self._sandbox = JsSandbox()
        results = self._sandbox.evaluate(sources)
        for expr, result in zip(self.exprs, results):
            if not result.ok:
                return FilterDecision(False, f"modality map line {expr.line} ({expr.key}): {_describe(result)}")
            if result.status == TRUE:
                if expr.key == EXCLUDE_KEY:
                    return FilterDecision(False, f"modality map line {expr.line}: exclude is true")
                return FilterDecision(True, f"modality map line {expr.line} ({expr.key}) is true", expr.key)
        modality = self.options.get("default") or DEFAULT_MODALITY
        return FilterDecision(True, "modality map: no expression is true, default modality", modality)


def _describe(result: JsResult) -> str:
    return {
        "non-boolean": "the expression did not return a boolean",
        "timeout": "the expression ran out of time",
        "memory": "the expression ran out of memory",
    }.get(result.status, f"the expression failed ({result.detail or 'error'})")


# ---------------------------------------------------------------------- parsing


def filter_parse(*, mode: str, text: str) -> SeriesFilter:
    """Compile a filter. Raises :class:`FilterError` naming every invalid line."""
    if mode not in MODES:
        raise FilterError(f"Unknown series import filter mode {mode!r}; expected one of {', '.join(MODES)}.")
    text = text or ""
    if len(text) > MAX_TEXT_CHARS:
        raise FilterError(f"The series import filter is longer than {MAX_TEXT_CHARS} characters.")
    if mode == "modalityMap":
        return _parse_map(text)
    return _parse_list(mode, text)


def _parse_list(mode: str, text: str) -> SeriesFilter:
    rules: list[_Rule] = []
    errors: list[str] = []
    tag = DEFAULT_TAG
    for number, raw in enumerate(_LINE_SPLIT.split(text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("[") and line.endswith("]"):
            parsed = parse_header_id(line[1:-1])
            if parsed is None:
                errors.append(f"line {number}: {line} (not a DICOM tag or keyword)")
            else:
                tag = parsed
            continue
        if line == "EXISTS":
            rules.append(_Rule(number, tag, "exists"))
        elif line == "!EXISTS":
            rules.append(_Rule(number, tag, "absent"))
        else:
            try:
                pattern = re.compile(java_regex_to_python(line), re.IGNORECASE | re.ASCII)
            except (re.error, ValueError, RecursionError, OverflowError) as exc:
                errors.append(f"line {number}: {line} ({exc})")
                continue
            rules.append(_Rule(number, tag, "regex", pattern))
    if errors:
        raise FilterError(INVALID_PATTERNS + "; ".join(errors))
    return SeriesFilter(mode=mode, text=text, rules=tuple(rules),
                        header_tags=frozenset(rule.tag for rule in rules))


def _parse_map(text: str) -> SeriesFilter:
    options: dict[str, str] = {}
    exclude: _Expr | None = None
    keyed: list[_Expr] = []
    seen: set[str] = set()
    errors: list[str] = []
    for number, raw in enumerate(re.split(r"\r\n|\r|\n", text), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if not sep or not _MAP_KEY.match(key):
            errors.append(f"line {number}: expected KEY: expression")
            continue
        if key in seen:
            errors.append(f"line {number}: {key} is defined twice")
            continue
        seen.add(key)
        if key in RESERVED_KEYS:
            if key in ("enabled", "strict") and value.lower() not in ("true", "false"):
                errors.append(f"line {number}: {key} must be true or false")
            elif key == "mode" and value != "modalityMap":
                errors.append(f"line {number}: mode must be modalityMap")
            elif key == "default" and not _MAP_KEY.match(value):
                errors.append(f"line {number}: default must be a modality such as MR")
            options[key] = value
            continue
        if not value:
            errors.append(f"line {number}: {key} has no expression")
            continue
        parts, unknown = _split_placeholders(value)
        if unknown:
            errors.append(f"line {number}: unknown DICOM keyword(s) {', '.join(sorted(unknown))}")
            continue
        syntax = check_syntax("".join(p if isinstance(p, str) else "" for p in parts))
        if syntax is not None:
            errors.append(f"line {number}: {key}: {syntax}")
            continue
        expr = _Expr(number, key, parts)
        if key == EXCLUDE_KEY:
            exclude = expr
        else:
            keyed.append(expr)
    if errors:
        raise FilterError(INVALID_MAP + "; ".join(errors))
    exprs = ((exclude,) if exclude else ()) + tuple(keyed)
    tags = frozenset(p for e in exprs for p in e.parts if isinstance(p, int))
    return SeriesFilter(mode="modalityMap", text=text, exprs=exprs, options=options, header_tags=tags)


def _split_placeholders(expression: str) -> tuple[tuple[str | int, ...], set[str]]:
    parts: list[str | int] = []
    unknown: set[str] = set()
    last = 0
    for match in _PLACEHOLDER.finditer(expression):
        tag = tag_for_keyword(match.group(1))
        if tag is None:
            unknown.add(match.group(1))
            continue
        parts.extend((expression[last:match.start()], int(tag)))
        last = match.end()
    parts.append(expression[last:])
    return tuple(p for p in parts if p != ""), unknown


# ---------------------------------------------------------------------- helpers


def parse_header_id(text: str) -> int | None:
    """``(0008,103E)``, ``0008,103E``, ``0008103E`` or a keyword → the tag as an int (None if not one)."""
    text = text.strip()
    if not re.fullmatch(r"[A-Za-z0-9(),]+", text):
        return None
    hexed = re.fullmatch(r"\(?([0-9A-Fa-f]{4}),?([0-9A-Fa-f]{4})\)?", text)
    if hexed:
        return int(hexed.group(1) + hexed.group(2), 16)
    tag = tag_for_keyword(text)
    return int(tag) if tag is not None else None


def header_name(tag: int) -> str:
    keyword = keyword_for_tag(tag) or "tag"
    return f"{keyword} ({tag >> 16:04X},{tag & 0xFFFF:04X})"


def header_value(dataset: Dataset, tag: int) -> str | None:
    """The header's value as a string, ``""`` when present but empty, None when absent (XNAT's null)."""
    if tag not in dataset:
        return None
    try:
        value = dataset[tag].value
    except Exception:  # noqa: BLE001 - an undecodable value counts as present and empty
        return ""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        try:
            return bytes(value).decode("ascii").strip("\x00 ")
        except UnicodeDecodeError:
            return ""
    if isinstance(value, Sequence):  # a sequence has no string value (and stringifying it would leak)
        return ""
    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(str(v) for v in value)
    return str(value)


def js_escape(value: str) -> str:
    """Write characters that could end a JS string, template or regex literal as ``\\uXXXX`` escapes: the
    escaped text means the same characters inside a string or a regex, but can never become code."""
    return _JS_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", value)


# ---------------------------------------------------------------------- XNAT's stored JSON


def filter_to_json(mode: str, text: str, enabled: bool, project_id: str | None = None) -> str:
    """The ``seriesImportFilter`` config JSON XNAT stores: ``{"mode", "enabled", ["projectId"], "list"}`` for
    regex lists; for a modality map, ``mode``/``enabled`` plus one key per ``KEY: expression`` line."""
    data: dict[str, Any] = {"mode": mode, "enabled": "true" if enabled else "false"}
    if project_id:
        data["projectId"] = project_id
    if mode == "modalityMap":
        for raw in re.split(r"\r\n|\r|\n", text or ""):
            line = raw.strip()
            key, sep, value = line.partition(":")
            if line and not line.startswith("#") and sep and key.strip() not in ("mode", "enabled"):
                data[key.strip()] = value.strip()
    else:
        data["list"] = text or ""
    return json.dumps(data)


def filter_from_json(stored: str | None) -> FilterConfig:
    """Read XNAT's stored JSON (either shape). Empty or missing → ``{"mode":"blacklist","list":""}``."""
    if not stored or not stored.strip():
        return FilterConfig()
    try:
        data = json.loads(stored)
    except ValueError as exc:
        raise FilterError(f"The stored series import filter is not valid JSON ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise FilterError("The stored series import filter is not a JSON object.")
    mode = str(data.get("mode") or "blacklist")
    if mode not in MODES:
        raise FilterError(f"Unknown series import filter mode {mode!r}.")
    enabled = str(data.get("enabled", "true")).lower() != "false"
    project_id = str(data["projectId"]) if data.get("projectId") else None
    if mode == "modalityMap":
        lines = [f"{k}: {' '.join(str(v).splitlines())}" for k, v in data.items()
                 if k not in ("mode", "enabled", "projectId", "list")]
        text = "\n".join(lines)
    else:
        text = str(data.get("list") or "")
    return FilterConfig(mode=mode, text=text, enabled=enabled, project_id=project_id)
