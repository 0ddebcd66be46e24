"""The session document: scans aggregated from the file rows (never from the files), as JSON and as XNAT
style XML (reference/xnat.md §7). Pure functions; the builder stores the results."""
from __future__ import annotations

import datetime
import re
from dataclasses import dataclass, field
from typing import Any, Iterable
from xml.etree import ElementTree as ET

XNAT_NS = "http://nrg.wustl.edu/xnat"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"

# SOP Class UID -> scan data type (dicom-xnat SOPModel, abridged)
SCAN_TYPES = {
    "1.2.840.10008.5.1.4.1.1.4": "xnat:mrScanData", "1.2.840.10008.5.1.4.1.1.4.1": "xnat:mrScanData",
    "1.2.840.10008.5.1.4.1.1.128": "xnat:petScanData", "1.2.840.10008.5.1.4.1.1.130": "xnat:petScanData",
    "1.2.840.10008.5.1.4.1.1.2": "xnat:ctScanData", "1.2.840.10008.5.1.4.1.1.2.1": "xnat:ctScanData",
    "1.2.840.10008.5.1.4.1.1.7": "xnat:scScanData",
}
MODALITY_SCAN_TYPES = {"MR": "xnat:mrScanData", "PT": "xnat:petScanData", "CT": "xnat:ctScanData",
                       "US": "xnat:usScanData", "CR": "xnat:crScanData", "DX": "xnat:dxScanData",
                       "NM": "xnat:nmScanData", "OT": "xnat:otherDicomScanData", "SC": "xnat:scScanData"}
# Lead modalities, in order of precedence (dicom-xnat lead-modalities), and their session types.
SESSION_TYPES = {"PT": "xnat:petSessionData", "MR": "xnat:mrSessionData", "CT": "xnat:ctSessionData",
                 "NM": "xnat:nmSessionData", "US": "xnat:usSessionData", "CR": "xnat:crSessionData",
                 "DX": "xnat:dxSessionData", "MG": "xnat:mgSessionData", "XA": "xnat:xaSessionData"}
LEAD_ORDER = ("PT", "MR", "CT", "NM", "US", "XA", "MG", "DX", "CR")
PETMR_TYPE = "xnat:petmrSessionData"
OTHER_SESSION_TYPE = "xnat:otherDicomSessionData"


@dataclass
class ScanAccumulator:
    scan_id: str
    uids: set[str] = field(default_factory=set)
    series_numbers: set[str] = field(default_factory=set)
    file_count: int = 0
    size: int = 0
    frames: int = 0
    first: dict[str, Any] = field(default_factory=dict)

    def add(self, row: dict[str, Any]) -> None:
        self.file_count += 1
        self.size += row["size"] or 0
        self.frames += row["frames"] or 1
        if row["series_instance_uid"]:
            self.uids.add(row["series_instance_uid"])
        self.series_numbers.add(row["series_number"])
        if not self.first:
            self.first = dict(row)
        else:  # fill blanks from later files
            for key, value in row.items():
                if value and not self.first.get(key):
                    self.first[key] = value

    def as_dict(self) -> dict[str, Any]:
        f = self.first
        sop_class = f.get("sop_class_uid", "")
        modality = f.get("modality", "")
        description = f.get("series_description", "")
        return {
            "ID": self.scan_id,
            "xsiType": SCAN_TYPES.get(sop_class) or MODALITY_SCAN_TYPES.get(modality, "xnat:otherDicomScanData"),
            "UID": sorted(self.uids)[0] if len(self.uids) == 1 else "",
            "type": description,
            "series_description": description,
            "modality": modality,
            "scanner": f.get("station_name", ""),
            "scanner_manufacturer": f.get("manufacturer", ""),
            "scanner_model": f.get("manufacturer_model_name", ""),
            "start_date": _date(f.get("series_date", "")),
            "startTime": _time(f.get("series_time", "")),
            "protocolName": f.get("protocol_name", ""),
            "bodyPartExamined": f.get("body_part_examined", ""),
            "requestedProcedureDescription": f.get("requested_procedure_description", ""),
            "frames": self.frames,
            "file_count": self.file_count,
            "file_size": self.size,
            "sop_class_uid": sop_class,
        }

    def warnings(self) -> list[str]:
        f, where = self.first, f"Scan {self.scan_id}: "
        return value_warnings(((where, "SeriesDate", f.get("series_date", ""), "its start date"),
                               (where, "SeriesTime", f.get("series_time", ""), "its start time")))


def _date(value: str) -> str:
    """A DICOM DA (YYYYMMDD) as YYYY-MM-DD; '' when absent or not a calendar date (20240230, 20241301,
    99999999): unknown, as XNAT's session builder makes it (with a warning, see ``value_warnings``)."""
    value = (value or "").strip()
    if not re.fullmatch(r"\d{8}", value):
        return ""
    try:
        return datetime.date(int(value[:4]), int(value[4:6]), int(value[6:8])).isoformat()
    except ValueError:
        return ""


def _time(value: str) -> str:
    """A DICOM TM (HH[MM[SS[.F]]]) as HH:MM:SS; '' when absent or out of range (996061)."""
    value = (value or "").strip()
    m = re.fullmatch(r"(\d{2})(\d{2})?(\d{2})?(?:\.\d{1,6})?", value)
    if not m:
        return ""
    hours, minutes, seconds = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    if hours > 23 or minutes > 59 or seconds > 60:  # 60: a leap second (PS3.5 TM)
        return ""
    return f"{hours:02d}:{minutes:02d}:{min(seconds, 59):02d}"


MSG_BAD_VALUE = "{where}{keyword} is not a valid DICOM {vr} value; {what} is unknown."


def value_warnings(values: Iterable[tuple[str, str, str, str]]) -> list[str]:
    """Warnings for header values that were present but could not be read: (where, keyword, value, what)
    of DA/TM values. The value itself is not repeated (dates can be PHI)."""
    out = []
    for where, keyword, value, what in values:
        if not (value or "").strip():
            continue
        vr = "date (DA)" if keyword.endswith("Date") else "time (TM)"
        parse = _date if keyword.endswith("Date") else _time
        if not parse(value):
            out.append(MSG_BAD_VALUE.format(where=where, keyword=keyword, vr=vr, what=what))
    return out


def scan_sort_key(scan_id: str) -> tuple:
    return (0, int(scan_id), "") if scan_id.isdigit() else (1, 0, scan_id)


def lead_modality(modalities: Iterable[str]) -> str:
    present = {m for m in modalities if m}
    for modality in LEAD_ORDER:
        if modality in present:
            return modality
    return sorted(present)[0] if present else ""


def session_type_for(modalities: Iterable[str]) -> str:
    present = {m for m in modalities if m}
    if "PT" in present and "MR" in present:
        return PETMR_TYPE
    return SESSION_TYPES.get(lead_modality(present), OTHER_SESSION_TYPE)


def document_xml(doc: dict[str, Any]) -> bytes:
    """The session document as XNAT-style XML (xnat:mrSessionData etc.)."""
    ET.register_namespace("xnat", XNAT_NS)
    ET.register_namespace("xsi", XSI_NS)
    local = doc["xsiType"].split(":", 1)[1]
    root = ET.Element(f"{{{XNAT_NS}}}{local}", {"project": doc.get("project") or "", "label": doc.get("label", ""), "ID": ""})
    for name in ("subject_ID", "UID", "date", "time", "modality", "prearchivePath"):
        if doc.get(name):
            ET.SubElement(root, f"{{{XNAT_NS}}}{name}").text = str(doc[name])
    if doc.get("visit"):
        ET.SubElement(root, f"{{{XNAT_NS}}}visit_id").text = doc["visit"]
    if doc.get("pet_tracer"):
        tracer = ET.SubElement(root, f"{{{XNAT_NS}}}tracer")
        ET.SubElement(tracer, f"{{{XNAT_NS}}}name").text = doc["pet_tracer"]
    scans = ET.SubElement(root, f"{{{XNAT_NS}}}scans")
    for scan in doc.get("scans", []):
        el = ET.SubElement(scans, f"{{{XNAT_NS}}}scan", {"ID": scan["ID"], "UID": scan["UID"] or "",
                                                          f"{{{XSI_NS}}}type": scan["xsiType"]})
        ET.SubElement(el, f"{{{XNAT_NS}}}type").text = scan["type"]
        for name in ("series_description", "modality", "frames", "startTime", "start_date",
                     "protocolName", "bodyPartExamined"):
            value = scan.get(name)
            if value not in (None, ""):
                ET.SubElement(el, f"{{{XNAT_NS}}}{name}").text = str(value)
        if scan.get("scanner"):
            ET.SubElement(el, f"{{{XNAT_NS}}}scanner", {"manufacturer": scan["scanner_manufacturer"],
                                                        "model": scan["scanner_model"]}).text = scan["scanner"]
        file_el = ET.SubElement(el, f"{{{XNAT_NS}}}file", {
            "label": "DICOM", "format": "DICOM", "content": "RAW", "file_count": str(scan["file_count"]),
            "file_size": str(scan["file_size"]), f"{{{XSI_NS}}}type": "xnat:resourceCatalog",
            "URI": f"{doc.get('prearchivePath', '')}/SCANS/{scan['ID']}/DICOM/scan_{scan['ID']}_catalog.xml",
        })
        file_el.text = None
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)
