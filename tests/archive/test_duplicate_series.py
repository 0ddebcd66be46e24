"""Two series sharing a SeriesNumber (issue 14 item 6): XNAT's conflict 17 rename, never one merged scan, and
a CONFLICT session archives only by an explicit overwrite choice (REST ``overwrite=``, the review page form)."""
from __future__ import annotations

import pytest
from pydicom import dcmread

from prearchive.models import PrearchiveSession
from prearchive.services.archive import ArchiveConflict, session_archive, session_archive_request
from tests.archive.conftest import archived_files, build, client_for, send_study
from xnatlite.models import ImageSession

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status
FIRST, SECOND = "1.2.826.0.1.3680043.2.1125.71", "1.2.826.0.1.3680043.2.1125.72"


def conflict_session(**kwargs) -> PrearchiveSession:
    """Series 1 (FIRST, 2 files) then series 1 again (SECOND, 3 files) and series 2, in one session."""
    from prearchive.services.intake import dicom_file_receive
    from tests.archive.conftest import incoming
    from tests.dicom_factory import make_dataset

    study = send_study(project="PROJ1", series=((1, "MR", 2),), series_uids={1: FIRST}, **kwargs)
    for i in range(1, 4):
        ds = make_dataset(StudyInstanceUID=study, SeriesInstanceUID=SECOND, SeriesNumber=1, InstanceNumber=i,
                          SeriesDescription="second")
        assert dicom_file_receive(path=incoming(ds), source="test",
                                  params={"PROJECT_ID": "PROJ1", "SUBJECT_ID": "SUBJ1", "EXPT_LABEL": "SESS1"}).ok
    send_study(project="PROJ1", study_uid=study, series=((2, "MR", 1),))
    session = PrearchiveSession.objects.get(tag=study)
    build(session.pk)
    session.refresh_from_db()
    return session


def test_the_build_keeps_two_scans_and_says_the_later_is_renamed(project, site):
    session = conflict_session()
    assert session.status == S.CONFLICT
    scans = {s["ID"]: s for s in session.document["scans"]}
    assert set(scans) == {"1", "1_1", "2"}
    assert (scans["1"]["UID"], scans["1"]["file_count"]) == (FIRST, 2)
    assert (scans["1_1"]["UID"], scans["1_1"]["file_count"]) == (SECOND, 3)
    assert scans["1_1"]["series_description"] == "second"
    assert "Series number 1 is used by 2 different series" in session.error_message
    assert "1_1" in session.error_message and "conflict 17" in session.error_message
    assert FIRST not in session.error_message and SECOND not in session.error_message


def test_a_conflict_session_is_not_archived_without_an_overwrite_choice(project, site):
    session = conflict_session()
    for mode in ("none", "", "bogus"):
        with pytest.raises(ArchiveConflict, match="explicit overwrite choice"):
            session_archive_request(session=session, actor="mike", overwrite=mode)
    session.refresh_from_db()
    assert session.status == S.CONFLICT and session.files.count() == 6
    assert not ImageSession.objects.exists()


def test_rest_archive_needs_overwrite_and_then_renames_the_second_scan(project, member, site):
    session = conflict_session()
    client = client_for(member)
    response = client.post("/data/services/archive", {"src": session.uri})
    assert response.status_code == 409, response.content
    assert b"explicit overwrite choice" in response.content
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.CONFLICT
    response = client.post("/data/services/archive", {"src": session.uri, "overwrite": "append"})
    assert response.status_code == 200, response.content
    record = ImageSession.objects.get(project_id="PROJ1", label="SESS1")
    scans = {s.scan_id: s for s in record.scans.all()}
    assert set(scans) == {"1", "1_1", "2"}
    assert (scans["1"].series_instance_uid, scans["1"].file_count) == (FIRST, 2)
    assert (scans["1_1"].series_instance_uid, scans["1_1"].file_count) == (SECOND, 3)
    by_scan: dict[str, set[str]] = {}
    for path in archived_files("PROJ1", "SESS1"):
        by_scan.setdefault(path.parts[-3], set()).add(dcmread(path, stop_before_pixels=True).SeriesInstanceUID)
    assert by_scan["1"] == {FIRST} and by_scan["1_1"] == {SECOND}


def test_the_review_form_archives_a_conflict_only_with_append_or_delete(project, member, site):
    session = conflict_session()
    client = client_for(member)
    form = {"project": "PROJ1", "subject": "SUBJ1", "label": "SESS1", "overwrite": "none"}
    page = client.post(f"/prearchive/{session.pk}/archive", form, follow=True).content.decode()
    assert "explicit overwrite choice" in page
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.CONFLICT
    client.post(f"/prearchive/{session.pk}/archive", dict(form, overwrite="delete"))
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.QUEUED_ARCHIVING
    assert session_archive(session_id=session.pk) == "archived"
    record = ImageSession.objects.get(project_id="PROJ1", label="SESS1")
    assert sorted(s.scan_id for s in record.scans.all()) == ["1", "1_1", "2"]


def test_append_onto_an_archived_session_keeps_in_session_renames_apart(project, site):
    """The archived session already has a scan 1 (another series) and the new session has 1 and 1_1: the
    append rename of the new 1 skips 1_1, so the four series stay four scans."""
    first = send_study(project="PROJ1", label="SESS1", series=((1, "MR", 1),), series_uids={1: "1.2.3.99"})
    s0 = PrearchiveSession.objects.get(tag=first)
    build(s0.pk)
    session_archive_request(session=PrearchiveSession.objects.get(pk=s0.pk), actor="mike")
    assert session_archive(session_id=s0.pk) == "archived"
    session = conflict_session(study_uid=first)
    session_archive_request(session=session, actor="mike", overwrite="append")
    assert session_archive(session_id=session.pk) == "archived"
    record = ImageSession.objects.get(project_id="PROJ1", label="SESS1")
    uids = {s.scan_id: s.series_instance_uid for s in record.scans.all()}
    assert uids["1"] == "1.2.3.99"
    assert sorted(uids.values()) == sorted(["1.2.3.99", FIRST, SECOND, uids["2"]])
    assert len(uids) == 4
