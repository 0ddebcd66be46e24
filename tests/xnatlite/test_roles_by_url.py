"""Who may see what: every URL the project serves (read from the URL configuration, so a new URL
without a rule fails this test), for every role, with the expected HTTP status of a GET.

Roles: anonymous; a signed-in user with no role ("outsider"); project collaborator, member, owner; site
admin. Set XNATLITE_DUMP_ROLES=1 to print the observed table when adding URLs.
"""
from __future__ import annotations

import os
import re
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from tests.archive.conftest import ready_session

ROLES = ("anonymous", "outsider", "collaborator", "member", "owner", "admin")

# Expected GET status per role, in ROLES order. 302 = sent to the login page (HTML pages);
# 401 = REST without credentials; 403/404 = refused (404 where existence itself is not revealed);
# 405 = the URL takes writes only.
A = (302, 302, 302, 302, 302, 200)       # the Django admin: site admins only
RULES: dict[str, tuple[int, ...]] = {
    "": (303, 303, 303, 303, 303, 303),
    # The admin's own login and logout pages (logout takes POST only).
    "admin/login/": (200, 200, 200, 200, 200, 303),
    "admin/logout/": (303, 303, 303, 303, 303, 405),
    "app/template/Login.vm": (200, 200, 200, 200, 200, 200),
    "favicon.ico": (301, 301, 301, 301, 301, 301),
    "archive/": (302, 200, 200, 200, 200, 200),
    "audit/": (302, 200, 200, 200, 200, 200),
    "archive/{project_id}/": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/audit": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/sessions/{label}/": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/sessions/{label}/download": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/sessions/{label}/manage": (302, 405, 405, 405, 405, 405),
    "archive/{project_id}/sessions/{label}/scans/{scan_id}/header": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/sessions/{label}/scans/{scan_id}/montage.png": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/sessions/{label}/scans/{scan_id}/snapshot.png": (302, 404, 200, 200, 200, 200),
    "archive/{project_id}/subjects/{label}/": (302, 404, 200, 200, 200, 200),
    "data/JSESSION": (401, 200, 200, 200, 200, 200),
    "data/auth": (401, 200, 200, 200, 200, 200),
    "data/config/anon/script": (401, 200, 200, 200, 200, 200),
    # DicomEdit lookup tables: the site's for site admins, a project's for its owners (and site admins)
    "data/config/anon/lookup": (401, 403, 403, 403, 403, 200),
    "data/config/anon/lookup/{name}": (401, 403, 403, 403, 403, 404),
    "data/projects/{project_id}/config/anon/lookup": (401, 404, 403, 403, 200, 200),
    "data/projects/{project_id}/config/anon/lookup/{name}": (401, 404, 403, 403, 404, 404),
    "data/config/projects/{project_id}/applet/{name}": (401, 404, 200, 200, 200, 200),
    "data/prearchive": (401, 200, 200, 200, 200, 200),
    "data/prearchive/projects": (401, 200, 200, 200, 200, 200),
    "data/prearchive/projects/{projects}": (401, 200, 200, 200, 200, 200),
    "data/prearchive/projects/{project}/{timestamp}/{folder}": (401, 404, 404, 200, 200, 200),
    "data/projects": (401, 200, 200, 200, 200, 200),
    "data/projects/{project_id}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/config/anon/projects/{path_project}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/config/applet/{name}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/prearchive_code": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/prearchive_code/{code}": (401, 404, 405, 405, 405, 405),
    "data/projects/{project_id}/quarantine_code": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/quarantine_code/{code}": (401, 404, 405, 405, 405, 405),
    # The desktop client's config paths (xnatlite/archive/api_config.py).
    "data/config/applet/{name}": (401, 200, 200, 200, 200, 200),
    "data/config/separatePETMR/config": (401, 200, 200, 200, 200, 200),
    "data/config/seriesImportFilter/config": (401, 200, 200, 200, 200, 200),
    "data/config/tracers/tracers": (401, 200, 200, 200, 200, 200),
    "data/projects/{project_id}/config/separatePETMR/config": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/config/seriesImportFilter/config": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/config/tracers/tracers": (401, 404, 200, 200, 200, 200),
    # The archive's data REST and XNAT's schemas (xnatlite/archive/api_rest.py, api_schemas.py).
    "data/experiments": (401, 200, 200, 200, 200, 200),
    "data/experiments/{experiment}": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/files": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/resources": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/resources/DICOM/files": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans/{scans}/files": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans/{scan}": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans/{scan}/resources": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans/{scan}/resources/{resource}": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans/{scan}/resources/{resource}/files": (401, 404, 200, 200, 200, 200),
    "data/experiments/{experiment}/scans/{scan}/resources/{resource}/files/{file_name}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/resources": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/resources/DICOM/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans/{scans}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans/{scan}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans/{scan}/resources": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans/{scan}/resources/{resource}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans/{scan}/resources/{resource}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/experiments/{experiment}/scans/{scan}/resources/{resource}/files/{file_name}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/resources": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/resources": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/resources/DICOM/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans/{scans}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans/{scan}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans/{scan}/resources": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans/{scan}/resources/{resource}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans/{scan}/resources/{resource}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/experiments/{experiment}/scans/{scan}/resources/{resource}/files/{file_name}": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/files": (401, 404, 200, 200, 200, 200),
    "data/projects/{project_id}/subjects/{subject}/resources": (401, 404, 200, 200, 200, 200),
    "data/search/elements": (401, 200, 200, 200, 200, 200),
    "data/search/elements/{element}": (401, 200, 200, 200, 200, 200),
    "data/subjects": (401, 200, 200, 200, 200, 200),
    "data/subjects/{subject}": (401, 404, 200, 200, 200, 200),
    "data/subjects/{subject}/experiments": (401, 404, 200, 200, 200, 200),
    "schemas/xnat/xnat.xsd": (200, 200, 200, 200, 200, 200),
    "xapi/schemas": (401, 200, 200, 200, 200, 200),
    "xapi/schemas/{schema}": (401, 200, 200, 200, 200, 200),
    "data/services/archive": (401, 405, 405, 405, 405, 405),
    "data/services/archive/jobs/{archive_job_id}": (401, 404, 200, 200, 200, 200),
    "data/services/auth": (405, 405, 405, 405, 405, 405),
    "data/services/import": (401, 405, 405, 405, 405, 405),
    "data/services/prearchive/{operation}": (401, 405, 405, 405, 405, 405),
    "data/version": (200, 200, 200, 200, 200, 200),
    "prearchive/": (302, 200, 200, 200, 200, 200),
    "projects/": (302, 200, 200, 200, 200, 200),
    "projects/{project_id}/manage/": (302, 404, 403, 403, 200, 200),
    "projects/{project_id}/manage/preview/": (302, 404, 403, 403, 200, 200),
    "prearchive/bulk": (302, 405, 405, 405, 405, 405),
    "prearchive/list.json": (302, 200, 200, 200, 200, 200),
    "prearchive/{pk}/": (302, 404, 404, 200, 200, 200),
    "prearchive/{pk}/action": (302, 405, 405, 405, 405, 405),
    "prearchive/{pk}/archive": (302, 404, 404, 200, 200, 200),
    "prearchive/{pk}/files/{file_id}/header": (302, 404, 404, 200, 200, 200),
    "prearchive/{pk}/scans/{scan_id}/thumbnail.png": (302, 404, 404, 200, 200, 200),
    # Status polling answers GONE for a session the caller may not see: nothing about it leaks.
    "prearchive/{pk}/status.json": (302, 200, 200, 200, 200, 200),
    "upload/": (302, 200, 200, 200, 200, 200),
    "upload/client/": (302, 200, 200, 200, 200, 200),
    "upload/client/settings/{project_id}": (401, 403, 403, 200, 200, 200),
    "upload/client/t/": (401, 405, 405, 405, 405, 405),
    # Transfers and upload jobs are private to the user who uploaded (here the member).
    "upload/client/t/{transfer_id}/": (302, 404, 404, 200, 404, 404),
    "upload/client/t/{transfer_id}/cancel": (401, 405, 405, 405, 405, 405),
    "upload/client/t/{transfer_id}/confirm": (401, 405, 405, 405, 405, 405),
    "upload/client/t/{transfer_id}/file": (401, 405, 405, 405, 405, 405),
    "upload/client/t/{transfer_id}/frame/{key}/{scan_id}.png": (401, 404, 404, 400, 404, 404),
    "upload/client/t/{transfer_id}/manifest": (401, 405, 405, 405, 405, 405),
    "upload/client/t/{transfer_id}/manifest.csv": (401, 405, 405, 405, 405, 405),
    "upload/client/t/{transfer_id}/state": (401, 404, 404, 200, 404, 404),
    "upload/client/t/{transfer_id}/suggest": (401, 405, 405, 405, 405, 405),
    "upload/client/transfers.json": (401, 200, 200, 200, 200, 200),
    "upload/client/transfers/": (302, 200, 200, 200, 200, 200),
    "upload/history/": (302, 200, 200, 200, 200, 200),
    "upload/jobs": (302, 405, 405, 405, 405, 405),
    "upload/jobs/{job_id}": (302, 404, 404, 200, 404, 404),
    "xapi/anonymize/default": (401, 200, 200, 200, 200, 200),
    "xapi/anonymize/projects/{project_id}": (401, 404, 200, 200, 200, 200),
    "xapi/anonymize/projects/{project_id}/enabled": (401, 404, 200, 200, 200, 200),
    "xapi/anonymize/site": (401, 200, 200, 200, 200, 200),
    "xapi/anonymize/site/enabled": (401, 200, 200, 200, 200, 200),
    # Site settings: site admins only; what clients read before logging in is public.
    "xapi/siteConfig": (401, 403, 403, 403, 403, 200),
    "xapi/siteConfig/buildInfo": (200, 200, 200, 200, 200, 200),
    "xapi/siteConfig/buildInfo/{name}": (200, 200, 200, 200, 200, 200),
    "xapi/siteConfig/uptime": (200, 200, 200, 200, 200, 200),
    "xapi/siteConfig/values/{names}": (401, 403, 403, 403, 403, 200),
    "xapi/siteConfig/{name}": (401, 403, 403, 403, 403, 200),
}

VALUES = {
    "names": "receivedFileUser,sessionXmlRebuilderRepeat",
    "name": "receivedFileUser",
}


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern)


def _normalise(route: str) -> str:
    """One spelling for path() and re_path() routes: parameters as {name}."""
    route = route.replace("^", "").replace("$", "").replace("/?", "")
    route = re.sub(r"\(\?P<(\w+)>[^)]*\)", r"{\1}", route)
    route = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
    route = route.replace("(?:archive/)?", "").replace("(?:resources/DICOM/)?", "")
    return route


def all_routes() -> list[str]:
    return sorted({_normalise(r) for r in _walk(get_resolver().url_patterns)})


def rule_for(route: str) -> tuple[int, ...] | None:
    if route in RULES:
        return RULES[route]
    if route.startswith("admin/"):
        return A
    return None


def test_every_url_has_a_rule():
    missing = [r for r in all_routes() if rule_for(r) is None]
    assert not missing, "URLs without a permission rule: " + ", ".join(missing)


@pytest.fixture
def world(admin_user, project, owner, member, collaborator, outsider, site):
    """One of everything a URL can name, in project PROJ1."""
    from prearchive.models import PrearchiveFile
    from prearchive.services.archive import session_archive, session_archive_request
    from upload.client.models import Transfer
    from upload.models import UploadJob

    pending = ready_session(project="PROJ1", subject="SUBJ1", label="PRE1")
    done = ready_session(project="PROJ1", subject="SUBJ2", label="ARC1")
    session_archive_request(session=done, actor="admin")
    assert session_archive(session_id=done.pk) == "archived"
    transfer = Transfer.objects.create(user=member, project=project, file_name="x.zip")
    job = UploadJob.objects.create(user=member, project=project, file_name="x.zip")
    from xnatlite.models import ArchiveJob

    archive_job = ArchiveJob.objects.create(op=ArchiveJob.Op.SESSION_UPDATE, project_id="PROJ1", actor="admin")
    file = PrearchiveFile.objects.filter(session=pending).first()
    from xnatlite.archive.data import scan_files, subject_id
    from xnatlite.models import ImageSession

    archived = ImageSession.objects.get(label="ARC1")
    first_scan = archived.scans.order_by("scan_id").first()
    return {
        "project_id": "PROJ1", "project": "PROJ1", "projects": "PROJ1", "path_project": "PROJ1",
        "timestamp": pending.timestamp, "folder": pending.folder_name, "pk": str(pending.pk),
        "file_id": str(file.pk), "scan_id": file.scan_id, "label": "ARC1",
        "transfer_id": str(transfer.id), "job_id": str(job.id), "archive_job_id": str(archive_job.pk),
        "key": "nokey", "operation": "move",
        "code": "4", "experiment": archived.accession_id, "subject": subject_id(archived.subject),
        "scan": first_scan.scan_id, "scans": "ALL", "resource": "DICOM",
        "file_name": scan_files(archived, [first_scan])[0].name, "schema": "xnat", "element": "xnat:mrSessionData",
        **VALUES,
    }


def _url(route: str, values: dict[str, str]) -> str:
    if "subjects/{label}" in route:
        route = route.replace("subjects/{label}", "subjects/SUBJ2")
    if "buildInfo/{name}" in route:
        route = route.replace("buildInfo/{name}", "buildInfo/version")
    if "applet/{name}" in route:
        route = route.replace("applet/{name}", "applet/allow-create-subject")
    # Parameters only the Django admin uses (object_id, app_label, ...) get a placeholder.
    return "/" + re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), "1"), route)


def _status(client, url: str) -> int:
    response = client.get(url)
    location = response.get("Location", "").lower()
    if response.status_code == 302 and "login" not in location:
        return 303  # a redirect somewhere other than the login page: shown as 303 in the table
    return response.status_code


@pytest.mark.django_db
def test_roles_by_url(world, client, admin_user, owner, member, collaborator, outsider):
    users = {"anonymous": None, "outsider": outsider, "collaborator": collaborator, "member": member,
             "owner": owner, "admin": admin_user}
    # One signed-in client per role (a login per request cost more than the requests themselves).
    clients = {}
    for role in ROLES:
        clients[role] = Client()
        if users[role] is not None:
            clients[role].force_login(users[role])
    observed: dict[str, tuple[int, ...]] = {}
    for route in all_routes():
        url = _url(route, world)
        observed[route] = tuple(_status(clients[role], url) for role in ROLES)
    if os.environ.get("XNATLITE_DUMP_ROLES"):
        for route, row in observed.items():
            if not route.startswith("admin/"):
                print(f'    "{route}": {row},')
    wrong = []
    for route, row in observed.items():
        expected = rule_for(route)
        if route.startswith("admin/") and route not in RULES:
            ok = row[:5] == A[:5] and row[5] < 500
        else:
            ok = expected == row
        if not ok:
            wrong.append(f"{route}: expected {expected}, got {row}")
    assert not wrong, "\n".join(wrong)
    # Listings answer 200 to everyone signed in, but show only what the caller may see.
    for role in ("outsider", "collaborator"):
        client.force_login(users[role])
        for listing in ("/data/prearchive", "/data/prearchive/projects", "/data/prearchive/projects/PROJ1",
                        "/prearchive/"):
            assert "PRE1" not in client.get(listing).content.decode(), (role, listing)
        assert "PROJ1" not in client.get("/data/projects").content.decode() or role == "collaborator"
    client.force_login(users["member"])
    assert "PRE1" in client.get("/data/prearchive/projects/PROJ1").content.decode()
    # Outsiders get on another project's prearchive and archive paths exactly what a missing one answers.
    client.force_login(users["outsider"])
    absent = {k: ("NOPE" + v if k not in ("pk", "file_id") else "99999999") for k, v in world.items()}
    for route in all_routes():
        if route.startswith(("data/prearchive/projects/{project}", "prearchive/{pk}", "archive/{project_id}",
                             "data/projects/{project}/", "data/projects/{project_id}")):
            if "{" not in route:
                continue
            there, missing = client.get(_url(route, world)), client.get(_url(route, absent))
            assert (there.status_code, there.content) == (missing.status_code, missing.content.replace(
                b"NOPE", b"")) or there.status_code == missing.status_code == 404, route
    # Nobody ever gets a server error.
    assert all(s < 500 for row in observed.values() for s in row)
