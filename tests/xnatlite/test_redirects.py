"""``next=`` and every redirect parameter lead only to this site's paths (issue 16 item 10)."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveSession
from tests.archive.conftest import client_for, ready_session

OFF_SITE = ("https://evil.example/phish", "//evil.example/phish", "/\\evil.example", "\\\\evil.example",
            "http:evil.example", "javascript:alert(1)", "https:///evil.example")


@pytest.mark.parametrize("target", OFF_SITE)
def test_bulk_action_never_redirects_off_site(project, member, site, target):
    session = ready_session(project="PROJ1", label="N1")
    r = client_for(member).post("/prearchive/bulk", {"action": "archive", "session": [session.pk],
                                                     "next": target})
    assert r.status_code == 302
    assert r["Location"] == "/prearchive/"
    assert PrearchiveSession.objects.get(pk=session.pk).status == PrearchiveSession.Status.QUEUED_ARCHIVING


def test_bulk_action_keeps_a_path_of_this_site(project, member, site):
    session = ready_session(project="PROJ1", label="N2")
    r = client_for(member).post("/prearchive/bulk", {"action": "archive", "session": [session.pk],
                                                     "next": "/prearchive/?project=PROJ1&sort=label"})
    assert r.status_code == 302 and r["Location"] == "/prearchive/?project=PROJ1&sort=label"


@pytest.mark.parametrize("target", OFF_SITE)
def test_login_pages_never_redirect_off_site(client, member, admin_user, target):
    for url, user, password in (("/app/template/Login.vm", "mike", "mike-pass-1"),
                                ("/admin/login/", "admin", "admin-pass-1")):
        r = client.post(url, {"username": user, "password": password, "next": target})
        assert r.status_code == 302, (url, r.status_code)
        location = r["Location"]
        assert location.startswith("/") and not location.startswith("//") and "evil" not in location, location
        client.logout()
