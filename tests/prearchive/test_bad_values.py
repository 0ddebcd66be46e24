"""Issue 16 item 4: bad header values never wedge a session. Dates, times and numbers that cannot be read
become unknown with a warning in the session document (as XNAT's session builder does); any build failure
ends in ERROR with its reason; a session in any status can be deleted by an owner or site admin (REST and
the review page) unless a job is running on it right now; ERROR sessions can be rebuilt."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services.builder import session_build
from tests.dicom_factory import make_dataset, write_dataset
from tests.upload.helpers import ADMIN, basic

from .conftest import receive

S = PrearchiveSession.Status
OWNER = ("olivia", "olivia-pass-1")
PARAMS = {"PROJECT_ID": "PROJ1", "SUBJECT_ID": "S1", "EXPT_LABEL": "S1_MR1"}


def _build(pk: int) -> str | None:
    return session_build(session_id=pk, expected=(S.RECEIVING, S.QUEUED_BUILDING))


# Values pydicom will not write are written as a placeholder of the same length, then patched in the bytes.
BAD_NUMBERS = {"86420": "abc  ", "86421": "x.y.z", "97531": "1.5  ", "97532": "1e400", "975330000000": "999999999999"}


@pytest.mark.django_db
@pytest.mark.parametrize("tags, warned", [
    ({"StudyDate": "20240230"}, "StudyDate"),
    ({"StudyDate": "20241301"}, "StudyDate"),
    ({"StudyDate": "99999999"}, "StudyDate"),
    ({"StudyTime": "996061"}, "StudyTime"),
    ({"StudyTime": "240000"}, "StudyTime"),
    ({"SeriesDate": "20230229", "SeriesTime": "126000"}, "SeriesDate"),
    ({"SliceThickness": "86420", "PixelSpacing": ["86421", "1"]}, None),
    ({"NumberOfFrames": "97531"}, None),
    ({"InstanceNumber": "97532"}, None),
    ({"InstanceNumber": "975330000000"}, None),
])
def test_a_bad_value_becomes_unknown_with_a_warning(project, tmp_path, tags, warned):
    results = []
    for i in range(2):
        path = write_dataset(make_dataset(SeriesNumber=1, StudyInstanceUID="1.2.3.16.4",
                                          SeriesInstanceUID="1.2.3.16.5", **tags), tmp_path / f"{i}.dcm")
        data = path.read_bytes()
        for placeholder, bad in BAD_NUMBERS.items():
            data = data.replace(placeholder.encode(), bad.encode())
        path.write_bytes(data)
        results.append(receive(path, params=PARAMS))
    assert all(r.status == "stored" for r in results), [r.reason for r in results]
    session = PrearchiveSession.objects.get()
    assert _build(session.pk) == S.READY
    session.refresh_from_db()
    assert session.status == S.READY and session.error_message == ""
    assert session.file_count == 2
    warnings = session.document.get("warnings", [])
    if warned is None:
        assert warnings == []
    else:
        assert any(warned in w and "unknown" in w for w in warnings), warnings
        assert all(tags.get(warned, "") not in w for w in warnings)  # the value is not repeated
    if warned == "StudyDate":
        assert session.scan_date is None and session.document["date"] == ""
    if warned == "StudyTime":
        assert session.scan_time is None and session.document["time"] == ""
    if warned == "SeriesDate":
        scan = session.document["scans"][0]
        assert scan["start_date"] == "" and scan["startTime"] == ""
        assert len(warnings) == 2 and all(w.startswith("Scan 1: ") for w in warnings)
        assert session.scan_date is not None  # the study's own date is fine
    if "NumberOfFrames" in tags:
        assert set(PrearchiveFile.objects.values_list("frames", flat=True)) == {1}


@pytest.mark.django_db
def test_a_good_date_and_time_are_kept():
    receive(make_dataset(StudyDate="20240229", StudyTime="235960.123"))
    session = PrearchiveSession.objects.get()
    assert _build(session.pk) == S.READY
    session.refresh_from_db()
    assert str(session.scan_date) == "2024-02-29" and str(session.scan_time) == "23:59:59"
    assert "warnings" not in session.document


def _block_document(session: PrearchiveSession) -> Path:
    """A directory where the session document goes: writing it fails (a real OSError, no mock)."""
    base = Path(str(settings.PREARCHIVE_ROOT)) / session.relative_dir
    blocker = base.with_name(base.name + ".xml")
    blocker.mkdir(parents=True)
    (blocker / "keep").write_text("x")
    return blocker


@pytest.mark.django_db
def test_a_build_that_fails_ends_in_error_with_its_reason_and_can_be_rebuilt(project, caplog):
    import shutil

    from prearchive.services.rebuild import session_rebuild_request

    receive(make_dataset(PatientName="Secret^Name"), params=PARAMS)
    session = PrearchiveSession.objects.get()
    blocker = _block_document(session)
    assert _build(session.pk) == S.ERROR
    session.refresh_from_db()
    assert session.status == S.ERROR
    assert session.error_message.startswith("The session could not be built: writing the session document "
                                            "failed (IsADirectoryError).")
    assert "Secret" not in caplog.text
    shutil.rmtree(blocker)
    session_rebuild_request(session=session, actor="olivia")
    session.refresh_from_db()
    assert session.status == S.QUEUED_BUILDING
    assert session_build(session_id=session.pk) == S.READY
    session.refresh_from_db()
    assert session.error_message == "" and session.file_count == 1


def _post_delete(client, session, auth):
    return client.post("/data/services/prearchive/delete", data=f"src={session.uri}&async=false",
                       content_type="application/x-www-form-urlencoded", **basic(*auth))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [s for s in S.values])
@pytest.mark.parametrize("who", ["owner", "admin"])
def test_every_status_can_be_deleted_by_an_owner_or_admin(client, project, owner, admin_user, status, who):
    """A session left in any status (a job that died, a message that was lost) is deleted through REST."""
    receive(make_dataset(), params=PARAMS)
    session = PrearchiveSession.objects.get()
    folder = Path(str(settings.PREARCHIVE_ROOT)) / session.relative_dir
    assert folder.is_dir()
    PrearchiveSession.objects.filter(pk=session.pk).update(status=status)
    r = _post_delete(client, session, OWNER if who == "owner" else ADMIN)
    assert r.status_code == 200, r.content
    assert not PrearchiveSession.objects.filter(pk=session.pk).exists()
    assert not PrearchiveFile.objects.exists()
    assert not folder.exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_running_on_the_session_makes_delete_wait(client, project, owner):
    """While a live job holds the session (its job lock), delete answers 409 and changes nothing."""
    from django.db import connection

    from prearchive.services.joblock import job_lock

    receive(make_dataset(), params=PARAMS)
    session = PrearchiveSession.objects.get()
    PrearchiveSession.objects.filter(pk=session.pk).update(status=S.ARCHIVING)
    holding, release = threading.Event(), threading.Event()

    def job():
        try:
            with job_lock("session", session.pk) as got:
                assert got
                holding.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=job)
    thread.start()
    try:
        assert holding.wait(30)
        r = _post_delete(client, session, OWNER)
        assert r.status_code == 409 and b"in progress" in r.content
        session.refresh_from_db()
        assert session.status == S.ARCHIVING and PrearchiveFile.objects.count() == 1
    finally:
        release.set()
        thread.join(30)
    r = _post_delete(client, session, OWNER)  # the job is gone: now it can
    assert r.status_code == 200, r.content
    assert not PrearchiveSession.objects.filter(pk=session.pk).exists()


@pytest.mark.django_db
def test_the_review_page_deletes_a_session_left_building(client, project, owner):
    from prearchive.services.delete import session_delete

    receive(make_dataset(), params=PARAMS)
    session = PrearchiveSession.objects.get()
    PrearchiveSession.objects.filter(pk=session.pk).update(status=S.BUILDING)  # its builder died
    client.login(username="olivia", password="olivia-pass-1")
    r = client.post(f"/prearchive/{session.pk}/action", {"action": "delete"})
    assert r.status_code == 302
    assert PrearchiveSession.objects.get(pk=session.pk).status == S.QUEUED_DELETING
    assert session_delete(session_id=session.pk) == "deleted"  # what the queued task runs
    assert not PrearchiveSession.objects.filter(pk=session.pk).exists()
