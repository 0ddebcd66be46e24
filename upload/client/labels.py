"""Subject and session labeling schemes of the uploader (the XNAT Desktop Client's), and ``v##`` numbering.

Subject schemes (``default-subject-labeling-scheme``): ``manual`` (default: the user types it), ``auto``
(two letters and three digits, unused in the project), ``dicom_patient_id``, ``dicom_patient_name``.
Session schemes (``default-session-labeling-scheme``): ``auto`` (default: ``{subject}_{modality}``, made
unique with ``_1``, ``_2``... as the Desktop Client does), ``dicom_patient_id``, ``dicom_accession_num``,
or a DicomEdit expression such as the seed's
``makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]``. When the scheme is ``auto``
and the site or project anonymization script assigns ``session := makeSessionLabel[...]``, that expression
is used, as XNAT's upload applet did.

``makeSessionLabel`` (XNAT's AbstractIndexedLabelFunction): the run of ``#`` in the formatted text is the
visit index; candidates are tried from 0 upwards, zero-padded to the run's length, and the first label not
used by a session of the project (archived or in the prearchive, or already chosen in this upload) wins.
So with ``S1_v00_mr`` and ``S1_v02_mr`` taken the next is ``S1_v01_mr``: gaps are filled first. Since the
label contains the subject and the modality, the number counts per subject and modality.
"""
from __future__ import annotations

import copy
import random
import re
import string
from typing import Iterable

from pydicom.dataset import Dataset

SUBJECT_SCHEMES = ("manual", "auto", "dicom_patient_id", "dicom_patient_name")
SESSION_SCHEMES = ("auto", "dicom_patient_id", "dicom_accession_num")
MAKE_SESSION_LABEL = "makeSessionLabel"
_BAD = re.compile(r"[^\w-]")
_INDEXED = re.compile(r"^(?P<open>[^#]+)(?P<index>#+)(?P<close>.*)$", re.S)
_SCRATCH_TAG = 0x0008103E  # where an expression's value is written on a scratch copy of the header

MSG_BAD_PATTERN = "The session labeling pattern {pattern!r} has no place for the visit number (e.g. v##)."
MSG_EXPRESSION = "The session labeling expression could not be evaluated ({detail})."


class LabelError(ValueError):
    """A labeling scheme that cannot produce a label; the message names no patient data."""


def label_chars(value: str) -> str:
    """XNAT's Labels.toLabelChars: every character outside [\\w-] becomes '_'."""
    return _BAD.sub("_", (value or "").strip())


def modality_label(modalities: Iterable[str]) -> str:
    """XNAT's modality of the session (``modalityLabel``): PET when any scan is PT (PET-CT, PET-MR)."""
    present = {m for m in modalities if m}
    for modality, label in (("PT", "PET"), ("MR", "MR"), ("CT", "CT")):
        if modality in present:
            return label
    return sorted(present)[0] if present else "OT"


# ------------------------------------------------------------------ v##


def indexed_label_next(*, pattern: str, taken: Iterable[str]) -> str:
    """The first free label for ``pattern`` (``open`` + ``#…#`` + ``close``); see the module docstring.
    A pattern without ``#`` is returned as is."""
    if "#" not in pattern:
        return pattern
    match = _INDEXED.match(pattern)
    if match is None:
        raise LabelError(MSG_BAD_PATTERN.format(pattern=pattern))
    from anonymization.dicomedit.labels import indexed_label

    return indexed_label(pattern, taken)


def unique_label(proposed: str, taken: Iterable[str]) -> str:
    """The Desktop Client's generate_unique_session_label: a taken ``X_7`` becomes ``X_8``…, another taken
    ``X`` becomes ``X_1``, ``X_2``…"""
    used = set(taken)
    if proposed not in used:
        return proposed
    match = re.match(r"^(.*_)(\d+)$", proposed)
    prefix, index = (match.group(1), int(match.group(2))) if match else (proposed + "_", 0)
    while True:
        index += 1
        label = f"{prefix}{index}"
        if label not in used:
            return label


# ------------------------------------------------------------------ expressions


def _bracket_end(text: str, start: int) -> int:
    """Index just after the ``]`` matching the ``[`` at ``start`` (strings respected)."""
    depth, i, quote = 0, start, False
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = False
        elif ch == '"':
            quote = True
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise LabelError(MSG_EXPRESSION.format(detail="unbalanced brackets"))


def make_session_label_find(text: str) -> tuple[int, int, str] | None:
    """(start, end, inner expression) of the first ``makeSessionLabel[...]`` in ``text``, outside comments."""
    for match in re.finditer(MAKE_SESSION_LABEL + r"\s*\[", text or ""):
        line_start = text.rfind("\n", 0, match.start()) + 1
        if "//" in text[line_start:match.start()]:
            continue
        open_at = match.end() - 1
        end = _bracket_end(text, open_at)
        return match.start(), end, text[open_at + 1:end - 1].strip()
    return None


def script_session_expression(texts: Iterable[str]) -> str | None:
    """The ``makeSessionLabel[...]`` call of the first script that has one (site script first)."""
    for text in texts:
        found = make_session_label_find(text or "")
        if found is not None:
            return text[found[0]:found[1]]
    return None


def dicomedit_quote(value: str) -> str:
    return '"' + (value or "").replace("\\", "\\\\").replace('"', '\\"') + '"'


def script_with_label(text: str, label: str) -> str:
    """``text`` with every ``makeSessionLabel[...]`` replaced by the chosen label as a string literal, so
    that the engine (which, like XNAT's server, has no makeSessionLabel) can run it."""
    out = text or ""
    while True:
        found = make_session_label_find(out)
        if found is None:
            return out
        out = out[:found[0]] + dicomedit_quote(label) + out[found[1]:]


def expression_evaluate(*, expression: str, header: Dataset | None, variables: dict[str, str]) -> str:
    """Evaluate a DicomEdit value expression (may use tags of ``header`` and the XNAT variables)."""
    from anonymization.dicomedit import DicomEditError
    from anonymization.dicomedit.values import element_string
    from anonymization.services import script_compile

    try:
        script = script_compile(text=f'version "6.1"\n(0008,103E) := {expression}\n')
        scratch = copy.deepcopy(header) if header is not None else Dataset()
        script.apply(scratch, variables=variables, record=False)
    except DicomEditError as exc:
        raise LabelError(MSG_EXPRESSION.format(detail=str(exc).splitlines()[0][:120])) from None
    return element_string(scratch, _SCRATCH_TAG) or ""


def session_label_from_expression(*, expression: str, header: Dataset | None, variables: dict[str, str],
                                  taken: Iterable[str]) -> str:
    """An expression that may be wrapped in ``makeSessionLabel[...]`` (whose ``#`` run is the visit)."""
    found = make_session_label_find(expression)
    if found is not None and found[0] == 0 and found[1] == len(expression.rstrip()):
        pattern = expression_evaluate(expression=found[2], header=header, variables=variables)
        return indexed_label_next(pattern=_label_chars_keep_hash(pattern), taken=taken)
    return label_chars(expression_evaluate(expression=expression, header=header, variables=variables))


def _label_chars_keep_hash(value: str) -> str:
    return "#".join(label_chars(part) for part in value.split("#"))


# ------------------------------------------------------------------ schemes


def subject_label_suggest(*, scheme: str, patient_id: str = "", patient_name: str = "",
                          taken: Iterable[str] = (), rng: random.Random | None = None) -> str:
    scheme = (scheme or "manual").strip().lower()
    if scheme == "dicom_patient_id":
        return label_chars(patient_id)
    if scheme == "dicom_patient_name":
        return label_chars(patient_name)
    if scheme == "auto":
        rng = rng or random.SystemRandom()
        used = set(taken)
        for _ in range(10000):
            label = "".join(rng.choice(string.ascii_uppercase) for _ in range(2)) + f"{rng.randrange(1000):03d}"
            if label not in used:
                return label
        raise LabelError("No free automatic subject label is left.")
    return ""


def session_label_suggest(*, scheme: str, subject: str, modality: str, project: str,
                          taken: Iterable[str] = (), header: Dataset | None = None, patient_id: str = "",
                          accession: str = "", script_expression: str | None = None) -> str:
    """The suggested session label; ``modality`` is the session's modalityLabel (MR, PET, CT...)."""
    raw = (scheme or "").strip()
    lowered = raw.lower()
    taken = list(taken)
    variables = {"project": project, "subject": subject, "session": "", "modalityLabel": modality}
    if lowered == "dicom_patient_id":
        return unique_label(label_chars(patient_id), taken) if patient_id else ""
    if lowered == "dicom_accession_num":
        return unique_label(label_chars(accession), taken) if accession else ""
    if raw and lowered not in ("auto", "manual") and ("[" in raw or '"' in raw or raw in variables):
        return session_label_from_expression(expression=raw, header=header, variables=variables, taken=taken)
    if script_expression:
        return session_label_from_expression(expression=script_expression, header=header,
                                             variables=variables, taken=taken)
    if not subject:
        return ""
    return unique_label(label_chars(f"{subject}_{modality}"), taken)
