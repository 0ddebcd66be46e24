"""``POST /data/prearchive/projects/P/ts/folder?action=commit`` honours the desktop client's parameters:
tracer, subject, label and overwrite (issue 13 item 5)."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveSession
from tests.archive.conftest import client_for, send_study
from xnatlite.models import ImageSession, Project

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status
PARAMS = "subject_ID=SUBJ_C&label=SESS_C&xnat:petSessionData/tracer/name=FDG&overwrite=append"


def _receiving(project_id="PROJ1") -> PrearchiveSession:
    study = send_study(project=project_id, subject="orig", label="orig_label")
    session = PrearchiveSession.objects.get(tag=study)
    assert session.status == S.RECEIVING
    return session


def test_commit_on_a_manual_project_keeps_the_parameters_for_the_archive(project, member, site):
    from prearchive.services.archive import session_archive, session_archive_request, target_for

    session = _receiving()
    response = client_for(member).post(f"{session.uri}?action=commit&{PARAMS}")
    assert response.status_code == 200, response.content
    row = PrearchiveSession.objects.get(pk=session.pk)
    assert (row.status, row.subject, row.name, row.pet_tracer, row.overwrite) == (
        S.READY, "SUBJ_C", "SESS_C", "FDG", "append")
    target = target_for(row)
    assert (target.subject, target.label, target.tracer, target.overwrite) == ("SUBJ_C", "SESS_C", "FDG", "append")
    session_archive_request(session=row, actor="t")
    assert session_archive(session_id=row.pk) == "archived"
    archived = ImageSession.objects.get(label="SESS_C")
    assert (archived.subject.label, archived.pet_tracer) == ("SUBJ_C", "FDG")


def test_commit_on_an_auto_archive_project_archives_with_the_parameters(project, member, site):
    from prearchive.services.archive import session_archive, target_for

    Project.objects.filter(pk="PROJ1").update(prearchive_code=4)
    session = _receiving()
    assert client_for(member).post(f"{session.uri}?action=commit&{PARAMS}").status_code == 200
    row = PrearchiveSession.objects.get(pk=session.pk)
    assert row.status == S.QUEUED_ARCHIVING
    target = target_for(row)
    assert (target.subject, target.label, target.tracer, target.overwrite) == ("SUBJ_C", "SESS_C", "FDG", "append")
    assert session_archive(session_id=row.pk) == "archived"
    archived = ImageSession.objects.get(label="SESS_C")
    assert (archived.subject.label, archived.pet_tracer) == ("SUBJ_C", "FDG")


def test_commit_without_parameters_builds_as_before(project, member, site):
    session = _receiving()
    assert client_for(member).post(f"{session.uri}?action=commit").status_code == 200
    row = PrearchiveSession.objects.get(pk=session.pk)
    assert (row.status, row.subject, row.name, row.pet_tracer) == (S.READY, "orig", "orig_label", "")
