"""The residual-PHI check: does a session's output still hold an identifying value its files arrived with?

At intake (``fingerprints_of`` before the site script, ``fingerprints_record`` once the file is stored) each
session remembers keyed hashes (HMAC with the site secret, services/script_state.phi_hmac) of the identifying
values of its files: the patient's name and each of its parts, patient IDs (other IDs and the Other Patient IDs
Sequence included), birth date and birth names, accession number, institution name and address, physicians and
operators, addresses and telephone numbers, and the Study, Series and SOP Instance UIDs the site script replaced
(the UIDs it kept are in the file rows). Never the values.

The check (``ResidualCheck``) reads every text, person-name, date/time and UID element of every output file,
sequence items and private elements included (a private element of VR UN is read as text), and hashes each
value, and each word of it, the same way. A match is a finding: "residual PHI: (0010,0020) still holds the
original Patient ID", with the scans it was found in. It runs after the archive's last script pass (on the
datasets the archive writes, no second read) and on demand for a prearchive session. Labels equal to the
patient's name or ID are findings too.

A UID kind a file keeps in its own element (a site that does not replace Series Instance UIDs, as XNAT's
default scripts do not) is not a finding for that file: the check reports a UID only where the scripts
replaced it and it survived somewhere else (a reference, a private element).
"""
from __future__ import annotations

import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import connection
from pydicom.dataelem import RawDataElement
from pydicom.datadict import dictionary_VR, dictionary_description, tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from .script_state import phi_hmac, phi_hmac_keyed as _keyed

IDENTIFYING = (
    "PatientName", "PatientID", "OtherPatientIDs", "OtherPatientNames", "PatientBirthDate", "PatientBirthName",
    "PatientMotherBirthName", "AccessionNumber", "InstitutionName", "InstitutionAddress", "ReferringPhysicianName",
    "ReferringPhysicianAddress", "ReferringPhysicianTelephoneNumbers", "PerformingPhysicianName",
    "NameOfPhysiciansReadingStudy", "PhysiciansOfRecord", "OperatorsName", "PatientAddress",
    "PatientTelephoneNumbers", "RequestingPhysician",
)
UIDS = {"StudyInstanceUID": 0x0020000D, "SeriesInstanceUID": 0x0020000E, "SOPInstanceUID": 0x00080018}
HEADER_TAGS = IDENTIFYING + tuple(UIDS) + ("OtherPatientIDsSequence",)
LABEL_CATEGORIES = ("PatientName", "PatientID", "OtherPatientIDs")
# Text, person-name, date and UID elements (numbers, ages and times hold none of the values remembered).
TEXT_VRS = frozenset(("AE", "CS", "DA", "DT", "LO", "LT", "PN", "SH", "ST", "UC", "UI", "UR", "UT", "UN"))
_WHOLE_ONLY = frozenset(("DA", "DT", "UI"))  # compared whole, never word by word
_WORDS = re.compile(r"[\^=\s\\,;:/()\[\]|]+")
MIN_PART = 2
_PURPOSE = "phi"


def _digest(text: str) -> str:
    return phi_hmac(text.strip().upper(), purpose=_PURPOSE)


_MEMO_MAX = 50_000


def _texts(value) -> list[str]:
    values = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    out = []
    for v in values:
        if v is None:
            continue
        if isinstance(v, (bytes, bytearray)):
            v = bytes(v).decode("latin-1", "replace")
        s = str(v).strip(" \x00")
        if s:
            out.append(s)
    return out


def _parts(text: str) -> list[str]:
    return [p for p in _WORDS.split(text) if len(p) >= MIN_PART and p != text]


# ------------------------------------------------------------------ at intake


_TAGS = {keyword: tag_for_keyword(keyword) for keyword in HEADER_TAGS}


def _element_texts(ds: Dataset, tag: int, encoding: str) -> list[str]:
    """The values of one element as text, from its raw bytes when it was not decoded yet; none when they do
    not decode (a value that does not decode is not a value to remember)."""
    elem = ds._dict.get(tag)
    if elem is None:
        return []
    try:
        if type(elem) is RawDataElement:
            return _raw_texts(elem.value, encoding) if elem.value else []
        return _texts(elem.value)
    except Exception:  # noqa: BLE001 - see above
        return []


def fingerprints_of(ds: Dataset, *, uids: bool = True) -> dict[str, set[str]]:
    """{category: digests} of the identifying values of one file, as it arrived (before any script);
    ``uids``: also of its Study, Series and SOP Instance UIDs (intake needs them only when a site script
    may replace them). The files of a session mostly carry the same identifying values: those digests are
    computed once per distinct set of raw values (``_PRINTS_MEMO``), the UIDs' for every file."""
    encoding = _encoding(ds)
    memo_key = _memo_key(ds, encoding)
    cached = _PRINTS_MEMO.get(memo_key) if memo_key is not None else None
    if cached is not None and cached[0] is _keyed():
        prints = {category: set(digests) for category, digests in cached[1].items()}
    else:
        prints = _identifying_prints(ds, encoding)
        if memo_key is not None:
            with _lock:
                _PRINTS_MEMO[memo_key] = (_keyed(), {c: frozenset(d) for c, d in prints.items()})
                while len(_PRINTS_MEMO) > _PRINTS_MEMO_MAX:
                    _PRINTS_MEMO.popitem(last=False)
    if uids:
        for keyword in UIDS:
            for text in _element_texts(ds, _TAGS[keyword], encoding):
                prints.setdefault(keyword, set()).add(_digest(text))
    return prints


def _identifying_prints(ds: Dataset, encoding: str) -> dict[str, set[str]]:
    prints: dict[str, set[str]] = {}
    for keyword in IDENTIFYING:
        for text in _element_texts(ds, _TAGS[keyword], encoding):
            digests = prints.setdefault(keyword, set())
            digests.add(_digest(text))
            digests.update(_digest(p) for p in _parts(text))
    try:
        items = ds.get("OtherPatientIDsSequence") if _TAGS["OtherPatientIDsSequence"] in ds._dict else ()
        for item in items:
            for text in _texts(item.get("PatientID")):
                prints.setdefault("OtherPatientIDs", set()).add(_digest(text))
    except Exception:  # noqa: BLE001
        pass
    return prints


# blake2b of a file's raw identifying values (never the values) -> (the HMAC key object they were hashed
# with, their digests). A new site secret makes a new key object: entries of the old one are not used.
_PRINTS_MEMO: "OrderedDict[bytes, tuple[object, dict[str, frozenset[str]]]]" = OrderedDict()
_PRINTS_MEMO_MAX = 256
_IDENTIFYING_TAGS = tuple(_TAGS[k] for k in IDENTIFYING)


def _memo_key(ds: Dataset, encoding: str) -> bytes | None:
    """A digest of the raw bytes of every identifying element (absent ones included), or None when one is
    decoded already or the file has an Other Patient IDs Sequence (then the digests are computed anew)."""
    if _TAGS["OtherPatientIDsSequence"] in ds._dict:
        return None
    h = hashlib.blake2b(encoding.encode("utf-8", "replace"), digest_size=20)
    get = ds._dict.get
    for tag in _IDENTIFYING_TAGS:
        elem = get(tag)
        if elem is None:
            h.update(b"\xff")
            continue
        if type(elem) is not RawDataElement or not isinstance(elem.value, bytes):
            return None
        h.update(b"\x00" + len(elem.value).to_bytes(4, "little") + elem.value)
    return h.digest()


_KNOWN: "OrderedDict[tuple[str, int, str, str], None]" = OrderedDict()
_KNOWN_MAX = 20000
_lock = threading.Lock()


def fingerprints_record(*, session_id: int | None, prints: dict[str, set[str]]) -> None:
    """Remember ``prints`` for the session (INSERT ... ON CONFLICT DO NOTHING; what this process wrote
    already is skipped)."""
    if session_id is None or not prints:
        return
    db = connection.settings_dict.get("NAME", "")
    with _lock:
        new = [(c, d) for c, ds in prints.items() for d in ds if (db, session_id, c, d) not in _KNOWN]
    if not new:
        return
    from prearchive.models import PhiFingerprint

    table = connection.ops.quote_name(PhiFingerprint._meta.db_table)
    marks = ", ".join(["(%s, %s, %s)"] * len(new))
    params: list = []
    for category, digest in new:
        params += [session_id, category, digest]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {table} (session_id, category, digest) VALUES {marks} "
                       "ON CONFLICT (session_id, digest, category) DO NOTHING", params)
    with _lock:
        for category, digest in new:
            _KNOWN[(db, session_id, category, digest)] = None
        while len(_KNOWN) > _KNOWN_MAX:
            _KNOWN.popitem(last=False)


def known_clear() -> None:
    with _lock:
        _KNOWN.clear()
        _PRINTS_MEMO.clear()


# ------------------------------------------------------------------ the check


@dataclass
class Finding:
    where: str
    category: str
    scans: set[str] = field(default_factory=set)
    files: int = 0

    @property
    def message(self) -> str:
        return finding_message(where=self.where, category=self.category, scans=sorted(self.scans))


def _description(category: str) -> str:
    tag = tag_for_keyword(category)
    return dictionary_description(tag) if tag is not None else category


def finding_message(*, where: str, category: str, scans: Iterable[str]) -> str:
    scans = list(scans)
    text = f"residual PHI: {where} still holds the original {_description(category)}"
    if scans:
        text += f" (scan{'s' if len(scans) > 1 else ''} {', '.join(scans)})"
    return text


_SKIP = frozenset((0x7FE00010, 0x7FE00008, 0x7FE00009, 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD))


def _encoding(ds: Dataset) -> str:
    try:
        charsets = ds._character_set
        return charsets[0] if charsets else "iso8859"
    except Exception:  # noqa: BLE001
        return "iso8859"


def _vr_of(tag: int) -> str | None:
    if (tag >> 16) & 1:
        return "UN"
    try:
        return dictionary_VR(tag)
    except KeyError:
        return "UN"


def _raw_texts(value: bytes, encoding: str) -> list[str]:
    try:
        text = value.decode(encoding, "replace")
    except LookupError:
        text = value.decode("latin-1", "replace")
    return [s for s in (v.strip(" \x00") for v in text.split("\\")) if s]


def _tag_text(tag: int) -> str:
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X})"


class ResidualCheck:
    """The check for one session: ``file(ds, scan_id)`` for every output dataset, then ``findings``."""

    def __init__(self, digests: dict[str, set[str]]) -> None:
        self.by_digest: dict[str, set[str]] = {}
        for category, values in digests.items():
            for d in values:
                self.by_digest.setdefault(d, set()).add(category)
        self.uid_digests = {k: digests.get(k, set()) for k in UIDS}
        self._found: dict[tuple[str, str], Finding] = {}
        self._memo: dict[str, str] = {}  # text -> digest for this check only: most values repeat file to file

    def _digest(self, text: str) -> str:
        digest = self._memo.get(text)
        if digest is None:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            digest = self._memo[text] = _digest(text)
        return digest

    @classmethod
    def for_session(cls, session_id: int) -> "ResidualCheck":
        from prearchive.models import PhiFingerprint, PrearchiveFile

        digests: dict[str, set[str]] = {}
        for category, digest in PhiFingerprint.objects.filter(session_id=session_id).values_list("category",
                                                                                                   "digest"):
            digests.setdefault(category, set()).add(digest)
        # The UIDs the site script kept are the rows' own (their hashes are not stored twice).
        for study, series, sop in PrearchiveFile.objects.filter(session_id=session_id).values_list(
                "study_instance_uid", "series_instance_uid", "sop_instance_uid"):
            for category, value in (("StudyInstanceUID", study), ("SeriesInstanceUID", series),
                                    ("SOPInstanceUID", sop)):
                if value:
                    digests.setdefault(category, set()).add(_digest(value))
        return cls(digests)

    def _exempt(self, ds: Dataset) -> set[str]:
        kept = set()
        encoding = _encoding(ds)
        for category, tag in UIDS.items():
            for text in _element_texts(ds, tag, encoding):
                if self._digest(text) in self.uid_digests[category]:
                    kept.add(category)
        return kept

    def file(self, ds: Dataset, scan_id: str = "") -> None:
        exempt = self._exempt(ds)
        seen: set[tuple[str, str]] = set()
        meta = getattr(ds, "file_meta", None)
        if meta is not None:
            self._walk(meta, "", exempt, seen)
        self._walk(ds, "", exempt, seen)
        for key in seen:
            finding = self._found[key]
            finding.files += 1
            if scan_id:
                finding.scans.add(scan_id)

    def _walk(self, ds: Dataset, prefix: str, exempt: set[str], seen: set, encoding: str = "") -> None:
        if not encoding:
            encoding = _encoding(ds)
        for tag, elem in list(ds._dict.items()):
            try:
                tag = int(tag)
                if tag in _SKIP:
                    continue
                private = bool((tag >> 16) & 1)
                texts = None
                if type(elem) is RawDataElement:
                    # Read the bytes as they are: no value conversion for elements the check only hashes.
                    vr = elem.VR or _vr_of(tag)
                    if vr == "SQ" or (vr == "UN" and elem.length == 0xFFFFFFFF):
                        elem = ds[tag]  # a sequence: pydicom parses its items
                    elif vr not in TEXT_VRS and not private:
                        continue
                    else:
                        texts = _raw_texts(elem.value, encoding) if elem.value else []
                if texts is None:
                    vr = elem.VR
                    if vr == "SQ":
                        for n, item in enumerate(elem.value or (), start=1):
                            self._walk(item, f"{prefix}{_tag_text(tag)} item {n} ", exempt, seen, encoding)
                        continue
                    if vr not in TEXT_VRS and not private:
                        continue
                    texts = _texts(elem.value)
            except Exception:  # noqa: BLE001 - a value that does not decode holds no text to match
                continue
            whole = vr in _WHOLE_ONLY
            for text in texts:
                if len(text) > 4096:
                    text = text[:4096]
                for candidate in ([text] if whole else [text, *_parts(text)]):
                    categories = self.by_digest.get(self._digest(candidate))
                    if not categories:
                        continue
                    for category in categories - exempt:
                        key = (f"{prefix}{_tag_text(tag)}", category)
                        if key not in self._found:
                            self._found[key] = Finding(where=key[0], category=category)
                        seen.add(key)

    def labels(self, **labels: str) -> None:
        """Labels (subject=..., session=...) equal to the patient's name or ID are findings too."""
        for what, label in labels.items():
            if not label:
                continue
            categories = self.by_digest.get(_digest(label), set()) & set(LABEL_CATEGORIES)
            for category in categories:
                key = (f"the {what} label", category)
                self._found.setdefault(key, Finding(where=key[0], category=category))

    @property
    def findings(self) -> list[Finding]:
        return list(self._found.values())


def findings_store(*, findings: list[Finding], session_id: int | None = None, image_session_id: int | None = None
                   ) -> None:
    """Replace the stored findings of a prearchive or archived session."""
    from prearchive.models import ResidualPhi

    if session_id is not None:
        ResidualPhi.objects.filter(session_id=session_id).delete()
    if image_session_id is not None:
        ResidualPhi.objects.filter(image_session_id=image_session_id).delete()
    ResidualPhi.objects.bulk_create([
        ResidualPhi(session_id=session_id, image_session_id=image_session_id, where=f.where[:255],
                    category=f.category, scans=sorted(f.scans), files=f.files) for f in findings])


def findings_archived(*, session_id: int, image_session_id: int) -> None:
    """The archive recorded the session: its findings now belong to the archived session."""
    from prearchive.models import ResidualPhi

    ResidualPhi.objects.filter(image_session_id=image_session_id).exclude(session_id=session_id).delete()
    ResidualPhi.objects.filter(session_id=session_id).update(image_session_id=image_session_id, session=None)


def session_residual_check(*, session_id: int) -> list[Finding]:
    """On demand, for a prearchive session: every file (header elements, no pixel data) as archiving it now
    would write it (the project script run in memory with the session's labels), and its labels; the findings
    are stored on the session and returned."""
    import pydicom

    from prearchive.models import PrearchiveFile, PrearchiveSession

    from .storage import session_dir

    session = PrearchiveSession.objects.get(pk=session_id)
    check = ResidualCheck.for_session(session_id)
    base = session_dir(session.relative_dir)
    script, variables = _archive_pass(session)
    run = run_context(session.project_id)
    for relative, scan_id in PrearchiveFile.objects.filter(session=session).values_list("relative_path", "scan_id"):
        try:
            ds = pydicom.dcmread(base / relative, stop_before_pixels=True)
            if script is not None and script.apply(ds, variables=variables, run=run).rejected:
                continue
        except Exception:  # noqa: BLE001 - a file that cannot be read (or scripted) is the builder's or archive's
            continue
        check.file(ds, scan_id)
    check.labels(subject=session.subject, session=session.name)
    findings = check.findings
    findings_store(findings=findings, session_id=session_id)
    return findings


def run_context(project_id: str | None = None):
    """The project script's context as the archive gives it (lookup tables, getURL), whose echo goes nowhere:
    a check, not a run the session's record should show."""
    from anonymization.services import run_context_for

    return run_context_for(project_id=project_id, echo=lambda text: None)


def _archive_pass(session):
    """The project script the archive would run on the session's files, with its variables (or None): the
    on-demand check looks at what archiving now would write."""
    from xnatlite.models import Project

    project = Project.objects.filter(pk=session.project_id).first() if session.project_id else None
    if project is None or session.prevent_anon or not project.anon_script_enabled or not project.anon_script.strip():
        return None, {}
    from anonymization.services import script_compile

    try:
        script = script_compile(text=project.anon_script)
    except Exception:  # noqa: BLE001 - a script that does not compile is refused by the archive anyway
        return None, {}
    modality = {"PT": "PET"}.get(session.modality, session.modality)
    return script, {"project": project.pk, "subject": session.subject, "session": session.name,
                    "modalityLabel": modality}


def session_findings(*, session_id: int | None = None, image_session_id: int | None = None) -> list[dict]:
    from prearchive.models import ResidualPhi

    rows = ResidualPhi.objects.filter(session_id=session_id) if session_id is not None else \
        ResidualPhi.objects.filter(image_session_id=image_session_id)
    return [{"where": r.where, "category": r.category, "scans": r.scans, "files": r.files, "message": r.message}
            for r in rows]
