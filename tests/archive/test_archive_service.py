"""The archive job run in-process: files, labels, script, records, prearchive removal, retry-safety."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

from prearchive.models import PrearchiveSession
from prearchive.services.archive import session_archive, session_archive_request
from tests.archive.conftest import PHI, archived_files, read_all, ready_session
from xnatlite.models import AuditEvent, ImageSession

pytestmark = pytest.mark.django_db
S = PrearchiveSession.Status


def archive(session, **kwargs):
    kwargs.setdefault("actor", "olivia")
    session_archive_request(session=session, **kwargs)
    return session_archive(session_id=session.pk)


def test_archive_writes_scans_applies_script_with_final_labels_and_removes_prearchive(scripted_project):
    session = ready_session(project="PROJ1", series=((1, "MR", 3), (2, "MR", 2)))
    folder = Path(settings.PREARCHIVE_ROOT) / session.relative_dir
    assert folder.is_dir()

    assert archive(session, subject="S_FINAL", label="E_FINAL") == "archived"

    files = archived_files("PROJ1", "E_FINAL")
    assert [f.relative_to(files[0].parents[3]).parts[:3] for f in files][0][0] == "SCANS"
    assert sorted({f.parent.parent.name for f in files}) == ["1", "2"]
    assert len(files) == 5
    for ds in read_all("PROJ1", "E_FINAL"):
        assert ds.StudyDescription == "PROJ1"
        assert str(ds.PatientName) == "S_FINAL"
        assert ds.PatientID == "E_FINAL"
        assert ds.SeriesDescription == "MR T1 MPRAGE"
        for keyword, value in PHI.items():
            assert str(ds.get(keyword, "")) != value, keyword
    record = ImageSession.objects.get(project_id="PROJ1", label="E_FINAL")
    assert record.subject.label == "S_FINAL"
    assert record.accession_id.startswith("XNATLITE_E")
    assert record.archive_path == "PROJ1/arc001/E_FINAL"
    assert {(s.scan_id, s.file_count) for s in record.scans.all()} == {("1", 3), ("2", 2)}
    assert not PrearchiveSession.objects.filter(pk=session.pk).exists()
    assert not folder.exists()
    event = AuditEvent.objects.get(action="session_archive")
    assert (event.actor, event.project_id, event.session_label) == ("olivia", "PROJ1", "E_FINAL")
    assert "Doe" not in str(event.details) and "PID0001" not in str(event.details)


def test_archive_without_project_script_keeps_headers(project, site):
    session = ready_session(project="PROJ1")
    assert archive(session) == "archived"
    ds = read_all("PROJ1", "SESS1")[0]
    assert ds.InstitutionName == PHI["InstitutionName"]


def test_a_broken_project_script_stops_with_error_and_keeps_files(project, site):
    project.anon_script, project.anon_script_enabled = 'version "6.1"\n(0010,0010) := \n', True
    project.save()
    session = ready_session(project="PROJ1")
    assert archive(session) == "error"
    session.refresh_from_db()
    assert session.status == S.ERROR
    assert "does not compile" in session.error_message and "2:" in session.error_message
    assert session.files.count() == 3
    assert not ImageSession.objects.exists()
    assert not (Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001" / "SESS1").exists()


def test_running_the_job_twice_is_a_no_op(project, site):
    session = ready_session(project="PROJ1")
    assert archive(session) == "archived"
    assert session_archive(session_id=session.pk) == "skipped"
    assert ImageSession.objects.count() == 1
    assert AuditEvent.objects.filter(action="session_archive").count() == 1


def test_a_session_not_ready_cannot_be_queued(project, site):
    from prearchive.services.archive import ArchiveError

    session = ready_session(project="PROJ1")
    PrearchiveSession.objects.filter(pk=session.pk).update(status=S.BUILDING)
    with pytest.raises(ArchiveError):
        session_archive_request(session=session, actor="x")


def test_files_arriving_during_the_archive_leave_it_receiving_with_every_file(project, site, monkeypatch):
    from prearchive.services import archive_tree

    session = ready_session(project="PROJ1", series=((1, "MR", 30),))
    session_archive_request(session=session, actor="x")
    real = archive_tree._write_atomic
    calls = {"n": 0}

    def write_then_interrupt(ds, dest):
        calls["n"] += 1
        if calls["n"] == 3:  # intake's rule for a file arriving during an operation
            PrearchiveSession.objects.filter(pk=session.pk).update(status=S.RECEIVING_INTERRUPT)
        real(ds, dest)

    monkeypatch.setattr(archive_tree, "_write_atomic", write_then_interrupt)
    assert session_archive(session_id=session.pk) == "interrupted"
    session.refresh_from_db()
    assert session.status == S.RECEIVING
    assert session.files.count() == 30
    folder = Path(settings.PREARCHIVE_ROOT) / session.relative_dir
    assert len([p for p in folder.rglob("*.dcm")]) == 30 or len(list(folder.rglob("*"))) >= 30
    assert not ImageSession.objects.exists()
    assert not list((Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001").glob(".*"))


def test_resuming_after_a_crash_at_each_step_archives_exactly_once(project, site, monkeypatch):
    """Kill points: mid-write, after the swap, after the record: the next run completes the job once."""
    from prearchive.services import archive as archive_mod
    from prearchive.services import archive_tree

    for step in ("write", "swap", "record"):
        label = f"E_{step}"
        session = ready_session(project="PROJ1", label=label, series=((1, "MR", 6),))
        session_archive_request(session=session, actor="x")

        class Crash(BaseException):  # like SIGKILL: no handler runs
            pass

        patches = {
            "write": (archive_tree, "_write_atomic", 4),
            "swap": (archive_tree, "fsync_dir", 1),
            "record": (archive_mod, "_cleanup", 1),
        }
        module, name, after = patches[step]
        real = getattr(module, name)
        count = {"n": 0}

        def crashing(*args, _real=real, _after=after, **kwargs):
            count["n"] += 1
            if count["n"] >= _after:
                raise Crash()
            return _real(*args, **kwargs)

        monkeypatch.setattr(module, name, crashing)
        with pytest.raises(Crash):
            session_archive(session_id=session.pk)
        monkeypatch.setattr(module, name, real)
        assert PrearchiveSession.objects.get(pk=session.pk).status == S.ARCHIVING
        assert session_archive(session_id=session.pk) == "archived", step
        assert len(archived_files("PROJ1", label)) == 6
        assert ImageSession.objects.filter(label=label).count() == 1
        assert AuditEvent.objects.filter(action="session_archive", session_label=label).count() == 1
        assert not PrearchiveSession.objects.filter(pk=session.pk).exists()
