"""DICOM → project / subject / session routing, as XNAT does it (reference/xnat.md §5). Pure Python, no Django.

Per concept the first non-blank value wins, in this order:

====  ===========================================  ====================  ===================  =================
pass  Project                                      Subject               Session              AA (auto-archive)
====  ===========================================  ====================  ===================  =================
0     param ``PROJECT_ID`` / ``project`` / ``dest``  ``SUBJECT_ID`` /      ``EXPT_LABEL`` /     ``AA`` /
      (``/prearchive/projects/P``, ``/archive/..``)  ``subject``           ``session``          ``auto-archive``
1     receiver ``project_routing_expression``        ``subject_...``       ``session_...``      –
2     ``Project:`` in (0010,4000), (0032,4000),      ``Subject:`` in the   ``Session:`` in the  ``AA:`` in the
      (0010,21B0), in that order                     same three            same three           same three
3     (0008,1030) Study Description (whole value)    (0010,0010) Name      (0010,0020) ID       –
4     (0008,0050) Accession Number                   –                     –                    –
–     None → the Unassigned prearchive               None                  ``"dicom_upload"``   None
====  ===========================================  ====================  ===================  =================

A project value counts only when ``resolve_project`` (the caller's lookup of IDs and aliases the user may
use) returns a project ID for it; otherwise the next pass is tried. Subject and session values are label-
sanitised (every character outside ``[A-Za-z0-9_-]`` becomes ``_``); a label is never cut short, since two
sessions whose labels differ only past the cut would merge: intake refuses labels over 64 characters with a
clear reason (values are bounded at ``MAX_LABEL_SCAN`` characters here, only to bound the work). ``AA`` values
are ``t``/``true`` (True) or ``f``/``false`` (False), case-insensitive; anything else is no value. XNAT's
site-wide custom rules (``/data/config/dicom/projectRules``) and the legacy rules file are not part of this.

Receiver routing expressions (``ReceiverRouting``; one expression a line, first non-blank result wins):

* ``TAG:REGEX`` or ``TAG:REGEX:GROUP``: TAG is ``(gggg,eeee)``, ``gggg,eeee`` or a keyword
  (``StudyComments``); REGEX (Python ``re``, searched, case-sensitive as in Java) runs over the tag's
  value; the result is capture group GROUP (default 1, or the whole match when the regex has no group).
  E.g. ``(0008,1030):Project:(\\w+)`` or ``StudyComments:^(\\w+)/(\\w+):2``. A trailing ``:<digits>`` is
  always read as GROUP.
* a fixed value (``[A-Za-z0-9_-]+``, no colon): always that value (e.g. a receiver dedicated to a project).

Assignment extraction uses the reference's case-insensitive pattern ``(?:\\A|(?:.*[\\s,;])) ID \\s*:\\s*
([\\w\\-]*)(?:(?:[\\s,;].*\\Z)|\\Z)``. That pattern backtracks quadratically on long values (its leading
``.*`` retries the rest at every position); this module finds the same match (the *last* ``ID:`` that starts
the value or follows ``[\\s,;]`` and whose value ends the string or is followed by ``[\\s,;]``) with lookaround
in linear time, treating line breaks like any other whitespace.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence

DEFAULT_SESSION = "dicom_upload"
MAX_LABEL = 64
MAX_LABEL_SCAN = 4096
MAX_PROJECT_CANDIDATE = 255  # longer values are never project IDs or aliases: skip the lookup
MAX_SCAN_CHARS = 65_536  # header text examined per value (DICOM's LT is at most 10,240)

PATIENT_COMMENTS = 0x00104000
STUDY_COMMENTS = 0x00324000
ADDITIONAL_PATIENT_HISTORY = 0x001021B0
STUDY_DESCRIPTION = 0x00081030
PATIENT_NAME = 0x00100010
PATIENT_ID = 0x00100020
ACCESSION_NUMBER = 0x00080050

COMMENT_TAGS = (PATIENT_COMMENTS, STUDY_COMMENTS, ADDITIONAL_PATIENT_HISTORY)
ROUTING_TAGS: tuple[int, ...] = COMMENT_TAGS + (STUDY_DESCRIPTION, PATIENT_NAME, PATIENT_ID, ACCESSION_NUMBER)
_TAG_NAMES = {
    PATIENT_COMMENTS: "PatientComments", STUDY_COMMENTS: "StudyComments",
    ADDITIONAL_PATIENT_HISTORY: "AdditionalPatientHistory", STUDY_DESCRIPTION: "StudyDescription",
    PATIENT_NAME: "PatientName", PATIENT_ID: "PatientID", ACCESSION_NUMBER: "AccessionNumber",
}

_DELIMITERS = frozenset(" \t\n\r\f\v,;")
_LABEL_BAD = re.compile(r"[^\w\-]", re.ASCII)
_DEST = re.compile(r"\A/*(?:prearchive|archive)/projects/([^/?#]+)", re.IGNORECASE)
_AA_TRUE = re.compile(r"t(?:rue)?\Z", re.IGNORECASE)
_AA_FALSE = re.compile(r"f(?:alse)?\Z", re.IGNORECASE)
_FIXED = re.compile(r"[\w\-]+\Z", re.ASCII)
_TAG_HEAD = re.compile(r"\A(\([0-9A-Fa-f]{4},[0-9A-Fa-f]{4}\)|[0-9A-Fa-f]{4},[0-9A-Fa-f]{4}|[A-Za-z][A-Za-z0-9]*):")


def _assignment_pattern(key: str) -> re.Pattern[str]:
    # Zero-width, so every occurrence is seen; groups: 1 the whole assignment, 2 the space after ":", 3 value.
    return re.compile(r"(?<![^\s,;])(?=(" + key + r"\s*:(\s*)([\w\-]*)))", re.IGNORECASE | re.ASCII)


_ASSIGNMENTS = {key: _assignment_pattern(key) for key in ("Project", "Subject", "Session", "AA")}


class RoutingExpressionError(ValueError):
    """A receiver routing expression does not parse (the message names the line, not header values)."""


@dataclass(frozen=True)
class RouteParams:
    """The route's request parameters (XNAT's names). ``RouteParams.from_mapping`` reads a query dict."""

    project: str | None = None
    subject: str | None = None
    session: str | None = None
    auto_archive: str | None = None
    dest: str | None = None

    @classmethod
    def from_mapping(cls, params: Mapping[str, Any]) -> RouteParams:
        def first(*names: str) -> str | None:
            for name in names:
                value = params.get(name)
                if value is not None and str(value).strip():
                    return str(value).strip()
            return None

        return cls(project=first("PROJECT_ID", "project"), subject=first("SUBJECT_ID", "subject"),
                   session=first("EXPT_LABEL", "session"), auto_archive=first("AA", "auto-archive"),
                   dest=first("dest"))


@dataclass(frozen=True)
class _Rule:
    line: int
    tag: int | None  # None: a fixed value
    pattern: re.Pattern[str] | None
    group: int
    fixed: str = ""


@dataclass(frozen=True)
class ReceiverRouting:
    """A receiver's (AE title:port's) routing expressions; see the module docstring for the format."""

    enabled: bool = True
    project: str = ""
    subject: str = ""
    session: str = ""

    @classmethod
    def from_receiver(cls, receiver: Any) -> ReceiverRouting:
        """From any object with XNAT's DicomSCPInstance attribute names (snake_case), e.g. the model."""
        return cls(enabled=bool(getattr(receiver, "routing_expressions_enabled", False)),
                   project=str(getattr(receiver, "project_routing_expression", "") or ""),
                   subject=str(getattr(receiver, "subject_routing_expression", "") or ""),
                   session=str(getattr(receiver, "session_routing_expression", "") or ""))

    @property
    def header_tags(self) -> frozenset[int]:
        """Tags the expressions read (add them to ``ROUTING_TAGS`` for a header-only read)."""
        if not self.enabled:
            return frozenset()
        rules = [r for text in (self.project, self.subject, self.session) for r in routing_expression_parse(text)]
        return frozenset(r.tag for r in rules if r.tag is not None)


@dataclass(frozen=True)
class Route:
    project: str | None
    subject: str | None
    session: str
    auto_archive: bool | None
    sources: dict[str, str] = field(default_factory=dict)  # concept → where its value came from (no values)


def route_dataset(*, dataset: Dataset, params: RouteParams | Mapping[str, Any] | None,
                  receiver: ReceiverRouting | Any | None,
                  resolve_project: Callable[[str], str | None]) -> Route:
    """Route one dataset (read header-only with at least ``routing_tags(receiver)``)."""
    if not isinstance(params, RouteParams):
        params = RouteParams.from_mapping(params or {})
    if receiver is not None and not isinstance(receiver, ReceiverRouting):
        receiver = ReceiverRouting.from_receiver(receiver)
    if receiver is not None and not receiver.enabled:
        receiver = None
    sources: dict[str, str] = {}
    comments = {tag: _text(dataset, tag) for tag in COMMENT_TAGS}

    def assigned(key: str) -> list[tuple[str, str]]:
        found = []
        for tag, text in comments.items():
            value = extract_assignment(text, key) if text else None
            if value:
                found.append((_TAG_NAMES[tag], value))
        return found

    # Project: every candidate must resolve.
    dest = _DEST.match(params.dest or "")
    project_candidates: list[tuple[str, str | None]] = [
        ("request:PROJECT_ID", params.project), ("request:dest", dest.group(1) if dest else None),
        ("receiver", _receiver_value(receiver, "project", dataset)),
        *[(f"{name}:Project", value) for name, value in assigned("Project")],
        ("StudyDescription", _text(dataset, STUDY_DESCRIPTION).strip()),
        ("AccessionNumber", _text(dataset, ACCESSION_NUMBER).strip()),
    ]
    project = None
    for source, candidate in project_candidates:
        if candidate and len(candidate) <= MAX_PROJECT_CANDIDATE and "\x00" not in candidate:
            project = resolve_project(candidate)
            if project:
                sources["project"] = source
                break

    subject = _first_label(sources, "subject", [
        ("request:SUBJECT_ID", params.subject), ("receiver", _receiver_value(receiver, "subject", dataset)),
        *[(f"{name}:Subject", value) for name, value in assigned("Subject")],
        ("PatientName", _text(dataset, PATIENT_NAME)),
    ])
    session = _first_label(sources, "session", [
        ("request:EXPT_LABEL", params.session), ("receiver", _receiver_value(receiver, "session", dataset)),
        *[(f"{name}:Session", value) for name, value in assigned("Session")],
        ("PatientID", _text(dataset, PATIENT_ID)),
    ])
    if session is None:
        session, sources["session"] = DEFAULT_SESSION, "default"

    auto_archive = None
    for source, value in [("request:AA", params.auto_archive),
                          *[(f"{name}:AA", v) for name, v in assigned("AA")]]:
        auto_archive = parse_auto_archive(value)
        if auto_archive is not None:
            sources["auto_archive"] = source
            break
    return Route(project=project, subject=subject, session=session, auto_archive=auto_archive, sources=sources)


def routing_tags(receiver: ReceiverRouting | Any | None = None) -> tuple[int, ...]:
    """``ROUTING_TAGS`` plus whatever the receiver's routing expressions read."""
    if receiver is None:
        return ROUTING_TAGS
    if not isinstance(receiver, ReceiverRouting):
        receiver = ReceiverRouting.from_receiver(receiver)
    return ROUTING_TAGS + tuple(sorted(receiver.header_tags - set(ROUTING_TAGS)))


# ---------------------------------------------------------------------- pieces


def extract_assignment(text: str, key: str) -> str | None:
    """The value of the last ``KEY: value`` assignment in ``text`` (reference §5's pattern), None if blank."""
    text = text[:MAX_SCAN_CHARS]
    pattern = _ASSIGNMENTS.get(key) or _assignment_pattern(re.escape(key))
    found = list(pattern.finditer(text))
    # The reference pattern tries its \A branch first, then (greedy ".*[\s,;]") the last occurrence first.
    order = found[:1] if found and found[0].start() == 0 else []
    order += [m for m in reversed(found) if m.start() != 0]
    for match in order:
        end = match.end(1)
        if end == len(text) or text[end] in _DELIMITERS:
            return match.group(3) or None
        if match.group(2):  # backtracking gives the value "" followed by that space: a blank match
            return None
    return None


def label_sanitize(value: str | None) -> str | None:
    """XNAT's ``Labels.toLabelChars``; None for a blank value. Not truncated to MAX_LABEL (intake refuses
    longer labels); values longer than MAX_LABEL_SCAN are cut there only to bound the work."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    return _LABEL_BAD.sub("_", value[:MAX_LABEL_SCAN])


def parse_auto_archive(value: str | None) -> bool | None:
    value = (value or "").strip()
    if _AA_TRUE.match(value):
        return True
    if _AA_FALSE.match(value):
        return False
    return None


def _first_label(sources: dict[str, str], concept: str, candidates: list[tuple[str, str | None]]) -> str | None:
    for source, value in candidates:
        label = label_sanitize(value)
        if label:
            sources[concept] = source
            return label
    return None


# Text VRs whose decoded value is the ASCII text itself with trailing NULs and spaces removed: one value
# (LT/ST/UT) or values split on backslashes (LO/SH/CS), as pydicom's convert_single_string / convert_text.
_SINGLE_TEXT_VRS = frozenset(("LT", "ST", "UT"))
_MULTI_TEXT_VRS = frozenset(("LO", "SH", "CS"))


@functools.lru_cache(maxsize=256)
def _dictionary_vr(tag: int) -> str:
    from pydicom.datadict import dictionary_VR

    try:
        return dictionary_VR(tag)
    except KeyError:
        return ""


def _raw_text(dataset: Dataset, tag: int) -> str | None:
    """What ``_text`` returns, straight from an undecoded element's ASCII bytes (no escape sequences);
    None when pydicom must decode it. Routing reads seven values a file: this skips pydicom's conversion."""
    elem = dataset._dict.get(tag)
    if elem is None or type(elem).__name__ != "RawDataElement":
        return None
    raw = elem.value
    if not isinstance(raw, bytes) or not raw.isascii() or b"\x1b" in raw:
        return None
    vr = elem.VR or _dictionary_vr(tag)
    if vr in _SINGLE_TEXT_VRS:
        return raw.decode("ascii").rstrip("\0 ")[:MAX_SCAN_CHARS]
    if vr in _MULTI_TEXT_VRS:
        return "\\".join(v.rstrip("\0 ") for v in raw.decode("ascii").split("\\"))[:MAX_SCAN_CHARS]
    if vr == "PN" and b"=" not in raw:  # convert_PN: the whole value rstripped; one component group each
        return raw.decode("ascii").rstrip("\0 ")[:MAX_SCAN_CHARS]
    return None


def _text(dataset: Dataset, tag: int) -> str:
    fast = _raw_text(dataset, tag)
    if fast is not None:
        return fast
    if tag not in dataset:
        return ""
    try:
        value = dataset[tag].value
    except Exception:  # noqa: BLE001 - an undecodable value is no value
        return ""
    if value is None or isinstance(value, (bytes, bytearray, Sequence)):
        return ""
    if isinstance(value, MultiValue):
        value = "\\".join(str(v) for v in value)
    return str(value)[:MAX_SCAN_CHARS]


def _receiver_value(receiver: ReceiverRouting | None, concept: str, dataset: Dataset) -> str | None:
    if receiver is None:
        return None
    for rule in routing_expression_parse(getattr(receiver, concept)):
        if rule.tag is None:
            return rule.fixed
        text = _text(dataset, rule.tag)
        match = rule.pattern.search(text) if rule.pattern is not None and text else None
        if match is not None:
            value = match.group(rule.group)
            if value and value.strip():
                return value.strip()
    return None


@functools.lru_cache(maxsize=256)
def routing_expression_parse(text: str) -> tuple[_Rule, ...]:
    """Compile receiver routing expressions (one a line). Raises :class:`RoutingExpressionError`."""
    rules: list[_Rule] = []
    errors: list[str] = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if _FIXED.match(line):
            rules.append(_Rule(number, None, None, 0, fixed=line))
            continue
        head = _TAG_HEAD.match(line)
        tag = _tag_of(head.group(1)) if head else None
        if head is None or tag is None:
            errors.append(f"line {number}: expected TAG:REGEX[:GROUP] or a fixed value")
            continue
        body = line[head.end():]
        group_match = re.search(r":(\d+)\Z", body)
        group = int(group_match.group(1)) if group_match else None
        if group_match:
            body = body[:group_match.start()]
        try:
            pattern = re.compile(body)
        except re.error as exc:
            errors.append(f"line {number}: invalid regex ({exc})")
            continue
        if group is None:
            group = 1 if pattern.groups else 0
        if group > pattern.groups:
            errors.append(f"line {number}: the regex has no group {group}")
            continue
        rules.append(_Rule(number, tag, pattern, group))
    if errors:
        raise RoutingExpressionError("Invalid routing expression: " + "; ".join(errors))
    return tuple(rules)


def _tag_of(text: str) -> int | None:
    hexed = re.fullmatch(r"\(?([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)?", text)
    if hexed:
        return int(hexed.group(1) + hexed.group(2), 16)
    tag = tag_for_keyword(text)
    return int(tag) if tag is not None else None
