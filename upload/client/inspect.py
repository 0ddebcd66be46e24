"""Inspect an uploaded archive before anything is imported: extract it safely (upload.archives) and read
the headers only (no pixel data), grouping files into sessions (StudyInstanceUID) and scans (SeriesNumber,
else SeriesInstanceUID, as intake does).

Two results: the *inspection* (database, shown to the user: study dates, modalities, study and series
descriptions, counts, image sizes, how many files of each scan the import filters will drop; no names, no
IDs) and the *manifest* (``manifest.json`` in the transfer's private folder: which file belongs to which
session and scan, the few header values the labeling schemes may need, and what the bulk review shows the
uploader so that they can tell their sessions apart: patient name and ID, accession number, the folders of
the upload the session came from). The manifest is removed with the folder; its values are never logged.

Filtered series: ``filters`` are the import's own (prearchive.services.intake.series_filters_for), evaluated
per file with the same function intake uses, on the header as uploaded.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydicom.errors import InvalidDicomError

from .labels import label_chars, modality_label

MANIFEST = "manifest.json"
TAGS = ["StudyInstanceUID", "SeriesInstanceUID", "SeriesNumber", "SeriesDescription", "Modality", "StudyDate",
        "StudyTime", "Rows", "Columns", "NumberOfFrames", "SOPClassUID", "SOPInstanceUID", "InstanceNumber",
        "AccessionNumber", "PatientID", "PatientName", "TransferSyntaxUID", "StudyDescription"]
MAX_FOLDERS = 5


def _text(ds, keyword: str) -> str:
    value = ds.get(keyword, "")
    return str(value).strip() if value is not None else ""


def _int(ds, keyword: str, default: int = 0) -> int:
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def _date(value: str) -> str:
    return f"{value[:4]}-{value[4:6]}-{value[6:8]}" if len(value) == 8 and value.isdigit() else ""


def _time(value: str) -> str:
    digits = value.split(".")[0]
    return f"{digits[:2]}:{digits[2:4]}" if len(digits) >= 4 and digits[:4].isdigit() else ""


def scan_id_for(series_number: str, series_uid: str) -> str:
    from prearchive.services.headers import scan_dir

    return scan_dir(series_number, series_uid)


def _folder(name: str) -> str:
    """The folder of a file inside the upload ('' for the top level)."""
    parts = name.replace("\\", "/").split("/")
    return "/".join(p for p in parts[:-1] if p not in ("", "."))


def headers_inspect(*, files: list[tuple[Path, str]], root: Path,
                    filters: list[tuple[str, str]] = ()) -> tuple[dict[str, Any], dict[str, Any]]:
    """(inspection, manifest) for the extracted ``files`` [(path, name in archive)] under ``root``;
    ``filters``: the series import filters the import will apply (see the module docstring)."""
    from prearchive.services.headers import HeaderError, header_read
    from prearchive.services.intake import series_filters_evaluate, series_filters_header_tags

    tags = list(TAGS) + sorted(series_filters_header_tags(list(filters)) - set(TAGS), key=str)
    studies: dict[str, dict[str, Any]] = {}
    order: list[str] = []
    unreadable: list[str] = []
    for path, name in files:
        try:
            ds = header_read(path, extra_tags=tags).dataset  # a Deflated file inflates with a cap, never whole
        except (HeaderError, InvalidDicomError, OSError, ValueError, EOFError, KeyError, TypeError):
            unreadable.append(name)
            continue
        study_uid = _text(ds, "StudyInstanceUID")
        if not study_uid or not _text(ds, "SOPInstanceUID"):
            unreadable.append(name)
            continue
        study = studies.get(study_uid)
        if study is None:
            study = studies[study_uid] = {"scans": {}, "dates": set(), "times": set(), "patient_id": "",
                                          "patient_name": "", "accession": "", "descriptions": set(),
                                          "folders": {}, "files": []}
            order.append(study_uid)
        study["dates"].add(_text(ds, "StudyDate"))
        study["times"].add(_text(ds, "StudyTime"))
        study["patient_id"] = study["patient_id"] or _text(ds, "PatientID")
        study["patient_name"] = study["patient_name"] or _text(ds, "PatientName")
        study["accession"] = study["accession"] or _text(ds, "AccessionNumber")
        study["descriptions"].add(_text(ds, "StudyDescription"))
        folder = _folder(name)
        study["folders"][folder] = study["folders"].get(folder, 0) + 1
        scan_id = scan_id_for(_text(ds, "SeriesNumber"), _text(ds, "SeriesInstanceUID"))
        scan = study["scans"].setdefault(scan_id, {"descriptions": set(), "modalities": set(), "sizes": set(),
                                                   "sop_classes": set(), "frames": 0, "files": [],
                                                   "filtered": 0})
        if filters and not series_filters_evaluate(filters=list(filters), dataset=ds)[0]:
            scan["filtered"] += 1
        scan["descriptions"].add(_text(ds, "SeriesDescription"))
        scan["modalities"].add(_text(ds, "Modality"))
        scan["sizes"].add((_int(ds, "Rows"), _int(ds, "Columns")))
        scan["sop_classes"].add(_text(ds, "SOPClassUID"))
        frames = _int(ds, "NumberOfFrames", 1) or 1
        scan["frames"] += frames
        rel = os.path.relpath(path, root)
        scan["files"].append([rel, _int(ds, "InstanceNumber"), frames])
    sessions, manifest_sessions = [], {}
    for n, study_uid in enumerate(order, start=1):
        study = studies[study_uid]
        key = f"s{n}"
        scans, scan_files, scan_frames = [], {}, {}
        for scan_id in sorted(study["scans"], key=lambda s: (0, int(s), "") if s.isdigit() else (1, 0, s)):
            scan = study["scans"][scan_id]
            scan["files"].sort(key=lambda f: (f[1], f[0]))
            rows, cols = sorted(scan["sizes"])[0]
            modalities = sorted(m for m in scan["modalities"] if m)
            scans.append({
                "id": scan_id, "description": " / ".join(sorted(d for d in scan["descriptions"] if d)),
                "modality": modalities[0] if modalities else "", "files": len(scan["files"]),
                "frames": scan["frames"], "rows": rows, "columns": cols,
                "uniform": len(scan["sizes"]) == 1 and len(scan["sop_classes"]) == 1 and rows > 0 and cols > 0,
                # files the import filters will drop; all of them: the scan "will be filtered"
                "filtered": scan["filtered"], "will_be_filtered": scan["filtered"] == len(scan["files"]),
            })
            scan_files[scan_id] = [f[0] for f in scan["files"]]
            scan_frames[scan_id] = [f[2] for f in scan["files"]]
        modalities = sorted({s["modality"] for s in scans if s["modality"]})
        dates = sorted(d for d in study["dates"] if d)
        times = sorted(t for t in study["times"] if t)
        sessions.append({
            "key": key, "study_date": _date(dates[0]) if dates else "", "study_time": _time(times[0]) if times else "",
            "modalities": modalities, "modality_label": modality_label(modalities), "is_pet": "PT" in modalities,
            "files": sum(s["files"] for s in scans), "scans": scans,
            "study_description": " / ".join(sorted(d for d in study["descriptions"] if d)),
            "filtered": sum(s["filtered"] for s in scans),
        })
        manifest_sessions[key] = {
            "study_uid": study_uid, "scans": scan_files, "frames": scan_frames,  # frames per file, in order
            "patient_id": label_chars(study["patient_id"]), "patient_name": label_chars(study["patient_name"]),
            "accession": label_chars(study["accession"]),
            # shown to the uploader in the bulk review only (views.transfer_state); never logged
            "shown": {"patient_name": study["patient_name"].replace("^", " ").strip(),
                      "patient_id": study["patient_id"], "accession": study["accession"],
                      "folders": sorted(study["folders"], key=lambda f: (-study["folders"][f], f))[:MAX_FOLDERS],
                      "folders_total": len(study["folders"])},
        }
    inspection = {"sessions": sessions, "unreadable": len(unreadable)}
    return inspection, {"sessions": manifest_sessions}


def manifest_write(*, work_dir: Path, manifest: dict[str, Any]) -> None:
    path = Path(work_dir) / MANIFEST
    tmp = path.with_name(f".{MANIFEST}.tmp")
    tmp.write_text(json.dumps(manifest))
    os.replace(tmp, path)


def manifest_read(*, work_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((Path(work_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return {"sessions": {}}
