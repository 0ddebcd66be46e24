"""XNAT's answer formats for the data REST: lists (``ResultSet.Result``) and single objects
(``items[].data_fields`` + ``children``) as json, xml, csv or html (``?format=``).

Lists: json ``{"ResultSet": {"Result": [...], "totalRecords": "n"}}``; csv with a header row (pyxnat reads every
listing this way); xml XNAT's XFTTable ``<ResultSet><results><columns>...<rows><row><cell>``; html a table.
Objects: json ``{"items": [item]}``; xml one element in XNAT's namespace, fields as attributes or child elements
as the schema (schemas/xnat.xsd) declares them. Without ``format`` both answer json.
"""
from __future__ import annotations

import csv
import io
from html import escape
from typing import Any, Iterable
from xml.etree import ElementTree as ET

from django.http import HttpRequest, HttpResponse

from xnatlite import rest

XNAT_NS = "http://nrg.wustl.edu/xnat"
XDAT_NS = "http://nrg.wustl.edu/xdat"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
FORMATS = ("json", "xml", "csv", "html")

# XML element names of the types (XNAT's root element names) and the fields written as attributes.
ELEMENT_NAMES = {
    "xnat:projectData": "Project", "xnat:subjectData": "Subject", "xnat:mrSessionData": "MRSession",
    "xnat:petSessionData": "PETSession", "xnat:petmrSessionData": "PETMRSession", "xnat:ctSessionData": "CTSession",
    "xnat:mrScanData": "MRScan", "xnat:petScanData": "PETScan", "xnat:ctScanData": "CTScan",
    "xnat:resourceCatalog": "ResourceCatalog",
}
ALWAYS = {"ID", "URI", "xsiType", "xnat_abstractresource_id", "label", "element_name", "Name"}
ATTRIBUTES = {"ID", "project", "label", "UID", "type", "secondary_ID", "visit_id", "group", "src"}


def requested_format(request: HttpRequest) -> str:
    return (request.GET.get("format") or "json").strip().lower()


def bad_format(fmt: str) -> HttpResponse:
    return rest.bad_request(f"Unknown format '{fmt}': use one of {', '.join(FORMATS)}.")


def _columns(rows: list[dict[str, Any]]) -> list[str]:
    names: list[str] = []
    for row in rows:
        for key in row:
            if key not in names:
                names.append(key)
    return names


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def list_response(request: HttpRequest, rows: Iterable[dict[str, Any]], *, title: str = "") -> HttpResponse:
    """A listing in the requested format; ``columns=a,b`` keeps those columns (plus the identifying ones the
    clients build their objects from: ID, URI, xsiType, and a resource's id, label and element_name)."""
    rows = list(rows)
    wanted = [c.strip() for c in request.GET.get("columns", "").split(",") if c.strip()]
    if wanted and "DEFAULT" not in wanted:
        keep = set(wanted) | ALWAYS
        rows = [{k: v for k, v in row.items() if k in keep} for row in rows]
    rows = [{k: _cell(v) for k, v in row.items()} for row in rows]
    fmt = requested_format(request)
    if fmt == "json":
        return rest.result_set(rows, title=title)
    columns = _columns(rows)
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([row.get(c, "") for c in columns])
        return rest.text(out.getvalue(), content_type="text/csv")
    if fmt == "xml":
        root = ET.Element(f"{{{XDAT_NS}}}ResultSet", {"totalRecords": str(len(rows)), "title": title})
        results = ET.SubElement(root, f"{{{XDAT_NS}}}results")
        cols = ET.SubElement(results, f"{{{XDAT_NS}}}columns")
        for c in columns:
            ET.SubElement(cols, f"{{{XDAT_NS}}}column").text = c
        body = ET.SubElement(results, f"{{{XDAT_NS}}}rows")
        for row in rows:
            r = ET.SubElement(body, f"{{{XDAT_NS}}}row")
            for c in columns:
                ET.SubElement(r, f"{{{XDAT_NS}}}cell").text = row.get(c, "")
        ET.register_namespace("xdat", XDAT_NS)
        return HttpResponse(ET.tostring(root, encoding="utf-8", xml_declaration=True),
                            content_type="text/xml; charset=utf-8")
    if fmt == "html":
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(row.get(c, ''))}</td>" for c in columns) + "</tr>"
                       for row in rows)
        page = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{escape(title)}</title></head><body>"
                f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></body></html>")
        return HttpResponse(page, content_type="text/html; charset=utf-8")
    return bad_format(fmt)


def _xml_item(item: dict[str, Any], tag: str | None = None) -> ET.Element:
    xsi_type = item["meta"]["xsi:type"]
    local = ELEMENT_NAMES.get(xsi_type, xsi_type.split(":", 1)[-1])
    el = ET.Element(f"{{{XNAT_NS}}}{tag or local}")
    if tag is not None:
        el.set(f"{{{XSI_NS}}}type", xsi_type)
    nested: dict[str, ET.Element] = {}
    for key, value in item["data_fields"].items():
        if value in (None, "") or key in ("URI", "xsiType"):
            continue
        text = _cell(value)
        parts = key.split("/")
        if len(parts) == 1 and key in ATTRIBUTES:
            el.set(key, text)
            continue
        parent = el
        for depth, part in enumerate(parts[:-1]):
            path = "/".join(parts[:depth + 1])
            if path not in nested:
                nested[path] = ET.SubElement(parent, f"{{{XNAT_NS}}}{part}")
            parent = nested[path]
        last = parts[-1]
        if len(parts) > 1 and last in ("x", "y", "z"):
            parent.set(last, text)
        else:
            ET.SubElement(parent, f"{{{XNAT_NS}}}{last}").text = text
    for child in item.get("children", []):
        outer, _, inner = child["field"].partition("/")
        holder = ET.SubElement(el, f"{{{XNAT_NS}}}{outer}")
        for sub in child["items"]:
            holder.append(_xml_item(sub, tag=inner or outer))
    return el


def object_response(request: HttpRequest, item: dict[str, Any]) -> HttpResponse:
    fmt = requested_format(request)
    if fmt == "json":
        from django.http import JsonResponse

        return JsonResponse({"items": [item]})
    if fmt == "xml":
        ET.register_namespace("xnat", XNAT_NS)
        ET.register_namespace("xsi", XSI_NS)
        return HttpResponse(ET.tostring(_xml_item(item), encoding="utf-8", xml_declaration=True),
                            content_type="text/xml; charset=utf-8")
    if fmt in ("csv", "html"):
        return list_response(request, [item["data_fields"]], title=item["meta"]["xsi:type"])
    return bad_format(fmt)
