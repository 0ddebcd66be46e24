"""Not allowed and not found answer the same to outsiders on the prearchive and archive paths, so nobody
learns that another project's session (or the project) exists; members who lack a right get 403
(issue 16 item 10)."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveSession
from tests.archive.conftest import client_for, ready_session
from xnatlite.models import Project, ProjectMember

S = PrearchiveSession.Status


@pytest.fixture
def world(admin_user, project, owner, member, collaborator, outsider, site):
    from prearchive.services.archive import session_archive, session_archive_request

    pending = ready_session(project="PROJ1", subject="SUBJ1", label="PRE1")
    done = ready_session(project="PROJ1", subject="SUBJ2", label="ARC1")
    session_archive_request(session=done, actor="admin")
    assert session_archive(session_id=done.pk) == "archived"
    Project.objects.create(id="PROJ2", name="Project Two", prearchive_code=0)
    ProjectMember.objects.create(project_id="PROJ2", user=collaborator, role=ProjectMember.Role.COLLABORATOR)
    return pending


def _answer(response, *names):
    """(status, body) with the names that differ between the two requests (IDs, labels) blanked."""
    body = response.content.decode(errors="replace")
    for name in names:
        body = body.replace(name, "<X>")
    return response.status_code, body


def _prearchive_requests(session, folder):
    path = f"/data/prearchive/projects/PROJ1/{session.timestamp}/{folder}"
    src = f"/prearchive/projects/PROJ1/{session.timestamp}/{folder}"
    return [
        ("delete", path, None),
        ("post", f"{path}?action=rebuild", None),
        ("post", f"{path}?action=commit", None),
        ("post", f"{path}?action=move&newProject=PROJ1", None),
        ("post", f"{path}?action=set-status&status=READY", None),
        ("post", "/data/services/prearchive/delete", {"src": src}),
        ("post", "/data/services/prearchive/rebuild", {"src": src}),
        ("post", "/data/services/prearchive/move", {"src": src, "newProject": "PROJ1"}),
        ("post", "/data/services/archive", {"src": src}),
        ("get", f"{path}", None),
        ("get", f"{path}/scans", None),
    ]


def _send(client, method, url, data):
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    return client.post(url, data or {})


@pytest.mark.parametrize("role", ["outsider", "collaborator"])
def test_a_prearchive_session_one_may_not_see_answers_as_a_missing_one(world, role, request):
    """Every REST write (and read) on another project's prearchive session: the same status and body as
    for a session that does not exist; nothing changes."""
    client = client_for(request.getfixturevalue(role))
    existing = _prearchive_requests(world, world.folder_name)
    missing = _prearchive_requests(world, "NO_SUCH_FOLDER")
    for (method, url, data), (_, url2, data2) in zip(existing, missing):
        seen = _answer(_send(client, method, url, data), world.folder_name)
        absent = _answer(_send(client, method, url2, data2), "NO_SUCH_FOLDER")
        assert seen == absent, (method, url, seen, absent)
        assert seen[0] in (404, 405), (method, url, seen)
    assert PrearchiveSession.objects.get(pk=world.pk).status == S.READY


def test_pages_of_a_session_one_may_not_see_answer_as_missing(world, outsider):
    client = client_for(outsider)
    for suffix, data in (("action", {"action": "delete"}), ("archive", {})):
        seen = client.post(f"/prearchive/{world.pk}/{suffix}", data)
        absent = client.post(f"/prearchive/99999999/{suffix}", data)
        assert seen.status_code == absent.status_code == 404, suffix
    seen = client.post("/archive/PROJ1/sessions/ARC1/manage", {"action": "delete"})
    absent = client.post("/archive/PROJ1/sessions/NO_SUCH/manage", {"action": "delete"})
    assert seen.status_code == absent.status_code == 404
    assert client.post("/archive/NOPROJ/sessions/ARC1/manage", {"action": "delete"}).status_code == 404
    assert PrearchiveSession.objects.get(pk=world.pk).status == S.READY


def test_a_project_one_may_not_see_answers_as_a_missing_one_as_target_and_for_uploads(world, member, outsider):
    """The member moves or archives their own session into PROJ2 (where they have no role) or into a
    project that does not exist: the same answer. Uploads to such projects alike."""
    client = client_for(member)
    path = f"/data/prearchive/projects/PROJ1/{world.timestamp}/{world.folder_name}"
    src = f"/prearchive/projects/PROJ1/{world.timestamp}/{world.folder_name}"
    pairs = [
        (("post", f"{path}?action=move&newProject=PROJ2", None), ("post", f"{path}?action=move&newProject=NOPRJ", None)),
        (("post", "/data/services/prearchive/move", {"src": src, "newProject": "PROJ2"}),
         ("post", "/data/services/prearchive/move", {"src": src, "newProject": "NOPRJ"})),
        (("post", "/data/services/archive", {"src": src, "project": "PROJ2"}),
         ("post", "/data/services/archive", {"src": src, "project": "NOPRJ"})),
        (("post", "/data/services/import?PROJECT_ID=PROJ2", None),
         ("post", "/data/services/import?PROJECT_ID=NOPRJ", None)),
    ]
    for (m1, u1, d1), (m2, u2, d2) in pairs:
        seen = _answer(_send(client, m1, u1, d1), "PROJ2")
        absent = _answer(_send(client, m2, u2, d2), "NOPRJ")
        assert seen == absent, (u1, seen, absent)
        assert seen[0] == 404, (u1, seen)
    assert PrearchiveSession.objects.get(pk=world.pk).project_id == "PROJ1"


def test_members_who_lack_a_right_still_get_403(world, member, collaborator):
    path = f"/data/prearchive/projects/PROJ1/{world.timestamp}/{world.folder_name}"
    r = client_for(member).post(f"{path}?action=set-status&status=ERROR")
    assert r.status_code == 403  # site admins only
    r = client_for(collaborator).post("/data/services/import?PROJECT_ID=PROJ1", b"x",
                                      content_type="application/zip")
    assert r.status_code == 403  # a collaborator reads, but may not upload
    ProjectMember.objects.create(project_id="PROJ2", user=member, role=ProjectMember.Role.COLLABORATOR)
    r = client_for(member).post(f"{path}?action=move&newProject=PROJ2")
    assert r.status_code == 403  # sees PROJ2, may not put sessions there
    assert PrearchiveSession.objects.get(pk=world.pk).status == S.READY
