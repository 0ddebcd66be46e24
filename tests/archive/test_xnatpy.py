"""xnatpy (XNAT's Python client) against the live server: list prearchive sessions, archive(), move(),
delete(), as its own code calls them (xnat/prearchive.py)."""
from __future__ import annotations

import pytest
import xnat

from prearchive.models import PrearchiveSession
from tests.archive.conftest import ready_session
from xnatlite.models import ImageSession, Project

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def connection(live_server, project, member, site):
    Project.objects.create(id="PROJ2", prearchive_code=0)
    from xnatlite.models import ProjectMember

    ProjectMember.objects.create(project_id="PROJ2", user=member, role="member")
    with xnat.connect(live_server.url, user="mike", password="mike-pass-1") as session:
        yield session


def test_list_archive_move_delete(connection):
    a = ready_session(project="PROJ1", subject="SA", label="LA")
    b = ready_session(project="PROJ1", subject="SB", label="LB")
    c = ready_session(project="PROJ1", subject="SC", label="LC")

    listed = {s.label: s for s in connection.prearchive.sessions(project="PROJ1")}
    assert set(listed) == {"LA", "LB", "LC"}
    assert listed["LA"].status == "READY" and listed["LA"].subject == "SA"
    assert {s.label for s in connection.prearchive.sessions()} >= {"LA", "LB", "LC"}

    # archive(): POST /data/services/archive with src, project, subject, session; answers the experiment,
    # an object of the model xnatpy built from /xapi/schemas.
    experiment = listed["LA"].archive(subject="SUBJ_A", experiment="SUBJ_A_MR1", overwrite="none")
    assert experiment.uri == "/data/projects/PROJ1/subjects/SUBJ_A/experiments/SUBJ_A_MR1"
    assert experiment.label == "SUBJ_A_MR1" and experiment.__xsi_type__ == "xnat:mrSessionData"
    archived = ImageSession.objects.get(label="SUBJ_A_MR1")
    assert archived.subject.label == "SUBJ_A" and archived.scans.count() == 1
    assert not PrearchiveSession.objects.filter(pk=a.pk).exists()

    # move(): POST /data/services/prearchive/move with src and newProject (async=false: done on return)
    listed["LB"].move("PROJ2", asynchronous=False)
    moved = PrearchiveSession.objects.get(pk=b.pk)
    assert moved.project_id == "PROJ2"
    assert {s.label for s in connection.prearchive.sessions(project="PROJ2")} == {"LB"}

    # delete(): POST /data/services/prearchive/delete with src
    listed["LC"].delete(asynchronous=False)
    assert not PrearchiveSession.objects.filter(pk=c.pk).exists()
    assert {s.label for s in connection.prearchive.sessions(project="PROJ1")} == set()


def test_archive_conflict_is_an_error_for_xnatpy(connection):
    first = ready_session(project="PROJ1", label="SAME")
    from prearchive.services.archive import session_archive, session_archive_request

    session_archive_request(session=first, actor="x", label="E1")
    assert session_archive(session_id=first.pk) == "archived"
    again = ready_session(project="PROJ1", label="SAME", study_uid=first.tag)
    listed = {s.label: s for s in connection.prearchive.sessions(project="PROJ1")}
    with pytest.raises(xnat.exceptions.XNATResponseError) as info:
        listed["SAME"].archive(experiment="E1")
    assert "409" in str(info.value)
    assert PrearchiveSession.objects.get(pk=again.pk).status == "CONFLICT"
