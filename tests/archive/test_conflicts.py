"""Each XNAT conflict code the archive job checks, and each overwrite mode (none, append, delete)."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveSession
from prearchive.services.archive import session_archive, session_archive_request
from tests.archive.conftest import archived_files, read_all, ready_session
from xnatlite.models import ImageSession, Project

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status


def archive(session, **kwargs):
    kwargs.setdefault("actor", "mike")
    session_archive_request(session=session, **kwargs)
    return session_archive(session_id=session.pk)


def first_archive(**kwargs):
    session = ready_session(project="PROJ1", **kwargs)
    assert archive(session) == "archived"
    return ImageSession.objects.get(project_id="PROJ1", label=kwargs.get("label", "SESS1"))


def conflict_of(session, **kwargs) -> str:
    assert archive(session, **kwargs) == "conflict"
    session.refresh_from_db()
    assert session.status == S.CONFLICT
    assert session.files.count() > 0  # nothing left the prearchive
    return session.error_message


def codes(message: str) -> set[int]:
    return {int(line.split(":")[0].split("-")[1]) for line in message.splitlines() if line}


def test_code_1_session_exists_and_16_same_scan(project, site):
    first = first_archive(series=((1, "MR", 2),), series_uids={1: "1.2.3.16"})
    again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, series=((1, "MR", 2),),
                          series_uids={1: "1.2.3.16"})
    message = conflict_of(again)
    assert codes(message) == {1, 16}
    assert "Session already exists, retry with overwrite enabled" in message
    assert "Session already contains a scan (1) with the same UID and number." in message


def test_code_17_same_number_other_uid_and_append_renames(project, site):
    first = first_archive(series=((1, "MR", 2),))
    again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, series=((1, "MR", 3),))
    assert codes(conflict_of(again)) == {1, 17}
    assert archive(again, overwrite="append") == "archived"
    record = ImageSession.objects.get(pk=first.pk)
    assert {(s.scan_id, s.file_count) for s in record.scans.all()} == {("1", 2), ("1_1", 3)}


def test_code_18_same_uid_other_number_is_not_resolved_by_append(project, site):
    first = first_archive(series=((1, "MR", 2),), series_uids={1: "1.2.3.18"})
    again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, series=((7, "MR", 2),),
                          series_uids={7: "1.2.3.18"})
    assert 18 in codes(conflict_of(again))
    PrearchiveSession.objects.filter(pk=again.pk).update(status=S.READY)
    assert codes(conflict_of(again, overwrite="append")) == {18}
    PrearchiveSession.objects.filter(pk=again.pk).update(status=S.READY)
    assert archive(again, overwrite="delete") == "archived"
    assert [s.scan_id for s in ImageSession.objects.get(pk=first.pk).scans.all()] == ["7"]


def test_code_2_study_archived_under_another_label(project, site):
    first = first_archive(label="FIRST")
    again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, label="SECOND")
    message = conflict_of(again)
    assert codes(message) == {2} and "FIRST" in message
    PrearchiveSession.objects.filter(pk=again.pk).update(status=S.READY)
    assert archive(again, overwrite="append") == "archived"  # the reviewer overrides
    assert ImageSession.objects.filter(study_instance_uid=first.study_instance_uid).count() == 2


def test_code_3_study_archived_in_another_project(project, site):
    Project.objects.create(id="PROJ2", prearchive_code=0)
    first = first_archive()
    again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, label="OTHER")
    assert codes(conflict_of(again, project_id="PROJ2")) == {3}


def test_code_4_label_exists_for_another_subject_fails_in_every_mode(project, site):
    first = first_archive(subject="ALICE")
    for mode in ("none", "append", "delete"):
        again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, subject="BOB",
                              label=f"TMP_{mode}")
        assert 4 in codes(conflict_of(again, label="SESS1", overwrite=mode)), mode
        assert "FAIL-4" in PrearchiveSession.objects.get(pk=again.pk).error_message


def test_code_5_other_study_uid_needs_delete(project, site):
    first = first_archive()
    other = ready_session(project="PROJ1", label="NEW")
    assert codes(conflict_of(other, label="SESS1")) == {1, 5, 17}
    PrearchiveSession.objects.filter(pk=other.pk).update(status=S.READY)
    assert codes(conflict_of(other, label="SESS1", overwrite="append")) == {5}
    PrearchiveSession.objects.filter(pk=other.pk).update(status=S.READY)
    assert archive(other, label="SESS1", overwrite="delete") == "archived"
    assert ImageSession.objects.get(pk=first.pk).study_instance_uid == other.tag


def test_code_19_modality_change_fails_unless_replaced(project, site):
    first = first_archive()
    pet = ready_session(project="PROJ1", study_uid=first.study_instance_uid, label="PETX",
                        series=((9, "PT", 2),))
    assert 19 in codes(conflict_of(pet, label="SESS1", overwrite="append"))


def test_code_6_no_destination_project(site, admin_user):
    session = ready_session(project=None)
    assert session.project_id is None
    assert codes(conflict_of(session)) == {6}


def test_overwrite_none_on_a_new_session_archives(project, site):
    session = ready_session(project="PROJ1")
    assert archive(session, overwrite="none") == "archived"


def test_overwrite_append_merges_files_and_keeps_the_old_ones(project, site):
    first = first_archive(series=((1, "MR", 2),), series_uids={1: "1.2.3.5"})
    more = ready_session(project="PROJ1", study_uid=first.study_instance_uid,
                         series=((1, "MR", 2), (2, "MR", 3)), series_uids={1: "1.2.3.5"})
    assert archive(more, overwrite="append") == "archived"
    record = ImageSession.objects.get(pk=first.pk)
    assert {(s.scan_id, s.file_count) for s in record.scans.all()} == {("1", 4), ("2", 3)}
    assert len(archived_files("PROJ1", "SESS1")) == 7
    assert len(record.document["prearchive_ops"]) == 2


def test_overwrite_delete_replaces_the_session(project, site):
    first = first_archive(series=((1, "MR", 2), (2, "MR", 2)))
    again = ready_session(project="PROJ1", study_uid=first.study_instance_uid, series=((3, "MR", 1),))
    assert archive(again, overwrite="delete") == "archived"
    record = ImageSession.objects.get(pk=first.pk)
    assert [s.scan_id for s in record.scans.all()] == ["3"]
    files = archived_files("PROJ1", "SESS1")
    assert len(files) == 1 and files[0].parts[-3] == "3"
    assert {ds.SeriesNumber for ds in read_all("PROJ1", "SESS1")} == {3}


def test_auto_archive_code_5_replaces_through_the_builder_hook(project, site):
    """The builder hands a READY auto-archive session to session_archive_enqueue; code 5 replaces (§7)."""
    from tests.archive.conftest import build, send_study

    first = first_archive(series=((1, "MR", 2),))
    Project.objects.filter(pk="PROJ1").update(prearchive_code=5)
    send_study(project="PROJ1", study_uid=first.study_instance_uid, series=((2, "MR", 1),))
    again = PrearchiveSession.objects.get(tag=first.study_instance_uid)
    build(again.pk)
    again.refresh_from_db()
    assert again.status == S.QUEUED_ARCHIVING
    assert session_archive(session_id=again.pk) == "archived"
    assert [s.scan_id for s in ImageSession.objects.get(pk=first.pk).scans.all()] == ["2"]
