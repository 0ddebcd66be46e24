"""A warning before archiving when the labels look like patient identifiers (equal to, or containing, the
patient's name or ID from the headers): the archive form says so and archives only once the reviewer ticks
that the labels were checked."""
from __future__ import annotations

from html import unescape

import pytest

from prearchive.models import PrearchiveSession
from tests.archive.conftest import client_for, ready_session

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status


def test_labels_from_the_patients_name_and_id_warn_and_need_a_tick(project, member, site):
    # make_dataset's patient: Doe^Jane, PID0001 (as a compressed upload without a subject would label it)
    session = ready_session(project="PROJ1", subject="Doe_Jane1", label="PID0001")
    client = client_for(member)
    page = unescape(client.get(f"/prearchive/{session.pk}/archive").content.decode()).replace("\n", " ")
    assert 'id="label-warnings"' in page
    assert "The subject label contains the patient's name." in page
    assert "The session label is the patient's ID." in page
    assert "Doe^Jane" not in page  # the warning does not repeat the value
    form = {"project": "PROJ1", "subject": "Doe_Jane1", "label": "PID0001", "overwrite": "none"}
    answer = unescape(client.post(f"/prearchive/{session.pk}/archive", form).content.decode()).replace("\n", " ")
    assert "look like patient identifiers" in answer
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.READY
    response = client.post(f"/prearchive/{session.pk}/archive", {**form, "labels_checked": "on"})
    assert response.status_code == 302
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.QUEUED_ARCHIVING


def test_plain_labels_do_not_warn_and_changed_labels_are_checked(project, member, site):
    session = ready_session(project="PROJ1", subject="SUBJ01", label="SUBJ01_MR1")
    client = client_for(member)
    page = unescape(client.get(f"/prearchive/{session.pk}/archive").content.decode()).replace("\n", " ")
    assert 'id="label-warnings"' not in page and "labels_checked" not in page
    # The reviewer types the patient's family name as the subject: warned on the labels being archived.
    answer = client.post(f"/prearchive/{session.pk}/archive", {"project": "PROJ1", "subject": "doe",
                                                               "label": "SUBJ01_MR1", "overwrite": "none"})
    assert "The subject label is the patient's name." in unescape(answer.content.decode())
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.READY
    ok = client.post(f"/prearchive/{session.pk}/archive", {"project": "PROJ1", "subject": "SUBJ01",
                                                           "label": "SUBJ01_MR1", "overwrite": "none"})
    assert ok.status_code == 302
