"""The audit trail page: every action in words (no raw codes, no internal paths), filters by who, what,
when and project, paging; a move out of Unassigned is stored with the project it went to."""
from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from prearchive.services.move import session_move, session_move_request
from tests.archive.conftest import client_for, ready_session
from xnatlite.models import AuditEvent, Project
from xnatlite.services import audit_record

pytestmark = pytest.mark.django_db


def test_a_move_out_of_unassigned_is_stored_with_its_project(project, admin_user, site):
    session = ready_session(project=None, subject="U1", label="U1_MR")
    session_move_request(session=session, new_project="PROJ1", actor="admin")
    assert session_move(session_id=session.pk) == "moved"
    event = AuditEvent.objects.get(action="prearchive_move")
    assert event.project_id == "PROJ1" and event.details["old_project"] == "Unassigned"
    page = unescape(client_for(admin_user).get("/audit/?project=PROJ1").content.decode())
    assert "moved session U1_MR from Unassigned to PROJ1" in page


def test_audit_in_words_with_filters_and_paging(project, owner, member, site):
    Project.objects.create(id="OTHER")
    audit_record(actor="mike", action="session_archive", project_id="PROJ1", subject_label="S1",
                 session_label="S1_MR", prearchive="/data/prearchive/projects/PROJ1/x/y", prearchive_id=7)
    audit_record(actor="olivia", action="project_member_set", project_id="PROJ1", user="mike", role="member")
    audit_record(actor="zed", action="session_archive", project_id="OTHER", subject_label="HIDDEN",
                 session_label="HIDDEN_MR")
    old = audit_record(actor="mike", action="prearchive_delete", project_id="PROJ1", session_label="OLD_MR")
    AuditEvent.objects.filter(pk=old.pk).update(at=timezone.now() - timedelta(days=40))
    client = client_for(owner)
    page = unescape(client.get("/audit/").content.decode())
    assert "archived session S1_MR (subject S1)" in page
    assert "gave mike the role member in PROJ1" in page
    assert "session_archive<" not in page and "/data/prearchive" not in page  # no raw codes or paths
    assert "HIDDEN_MR" not in page  # another project's events stay hidden
    only_olivia = unescape(client.get("/audit/?who=olivia").content.decode())
    assert "gave mike the role" in only_olivia and "S1_MR" not in only_olivia
    archives = unescape(client.get("/audit/?what=session_archive").content.decode())
    assert "S1_MR" in archives and "gave mike" not in archives
    since = (timezone.now() - timedelta(days=7)).strftime("%Y-%m-%d")
    recent = unescape(client.get(f"/audit/?since={since}").content.decode())
    assert "OLD_MR" not in recent and "S1_MR" in recent
    for i in range(60):
        audit_record(actor="mike", action="prearchive_delete", project_id="PROJ1", session_label=f"BULK{i:02d}")
    first = unescape(client.get("/audit/?project=PROJ1").content.decode())
    assert "Page 1 of 2" in first and "BULK59" in first and "BULK00" not in first
    second = unescape(client.get("/audit/?project=PROJ1&page=2").content.decode())
    assert "BULK00" in second and "OLD_MR" in second
