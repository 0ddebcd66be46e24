"""One DicomEdit script context per session (issue 14, items 2 and 3): the memos of the site script
(mapReferencedUIDs, mapUID) are shared by every file of a study and by every process that takes it in, and
``echo`` goes to the session's processing record, never to a process's output or a log."""
from __future__ import annotations

import logging

import pydicom
import pytest
from django.test import Client
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveFile, PrearchiveSession, ScriptMemo, SessionNote
from prearchive.services import script_state
from tests.dicom_factory import make_dataset
from tests.hardening import scu
from tests.hardening.conftest import beat, fast_site, fault_env, free_port, receiver, wait_until, worker  # noqa: F401

from .conftest import receive

S = PrearchiveSession.Status
PREFIX = "1.2.826.0.1.3680043.10.9"
MAP_SCRIPT = f"""version "6.2"
mapReferencedUIDs["{PREFIX}", "(0020,000D)"]
echo (0010,0010)
"""
NAME = "Zzechoname^Zzgiven"


@pytest.fixture
def procs():
    started = []
    yield started
    for proc in reversed(started):
        proc.stop()


def _study(count: int, study_uid: str) -> list:
    series = generate_uid()
    return [make_dataset(StudyInstanceUID=study_uid, SeriesInstanceUID=series, SeriesNumber=1, InstanceNumber=i + 1,
                         PatientName=NAME, PatientID="ZZECHOID1",
                         PatientComments="Project:PROJ1 Subject:SUBJ1 Session:SESS1") for i in range(count)]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_three_files_through_two_receiver_processes_make_one_session_with_one_mapped_uid(
        project, fault_env, tmp_path, procs, caplog):
    caplog.set_level(logging.DEBUG)
    fast_site(idle=2, sweep_ms=1000, site_script=MAP_SCRIPT)
    env = dict(fault_env, LOG_LEVEL="DEBUG")
    ports = free_port(), free_port()
    first = receiver(env, tmp_path / "receiver1.log", ports[0])
    procs.append(first)
    second = receiver(env, tmp_path / "receiver2.log", ports[1], processes=2)  # a supervisor and two processes
    procs.append(second)
    original = generate_uid()
    files = _study(3, original)
    for ds, port in zip(files, (ports[0], ports[1], ports[1])):
        outcome = scu.Outcome()
        scu.send([ds], port=port, outcome=outcome)
        assert outcome.succeeded == {str(ds.SOPInstanceUID)}, outcome.status
    procs.append(worker(env, tmp_path / "worker.log", loglevel="DEBUG"))
    procs.append(beat(env, tmp_path / "beat.log", loglevel="DEBUG"))
    wait_until(lambda: PrearchiveSession.objects.filter(status=S.READY).exists(), timeout=90,
               what="a READY session", procs=procs)
    session = PrearchiveSession.objects.get()
    assert session.status == S.READY and session.file_count == 3
    uids = {str(pydicom.dcmread(p, stop_before_pixels=True).StudyInstanceUID)
            for p in (PrearchiveFile.objects.filter(session=session).values_list("relative_path", flat=True))
            for p in [_session_path(session, p)]}
    assert len(uids) == 1
    (mapped,) = uids
    assert mapped.startswith(PREFIX + ".") and mapped != original
    assert session.tag == mapped  # the session is keyed by the UID the files carry after the script
    assert ScriptMemo.objects.filter(kind="ref").count() == 1
    assert original not in "".join(ScriptMemo.objects.values_list("key", "value").first())

    # echo: once per file in the session's record; in no process's output and no log.
    assert list(SessionNote.objects.filter(session=session).values_list("text", flat=True)) == [NAME] * 3
    for proc in procs:
        proc.stop()
    outputs = {p.log.name: p.text() for p in procs}
    outputs["this process's logs"] = caplog.text
    assert "Zzechoname" not in "".join(outputs.values()), [k for k, v in outputs.items() if "Zzechoname" in v]
    assert "listening on" in outputs["receiver1.log"]  # the outputs really were captured


def _session_path(session, relative):
    from prearchive.services.storage import session_dir

    return session_dir(session.relative_dir) / relative


@pytest.mark.django_db
def test_the_memo_survives_a_restart_and_another_process_racing_for_the_same_value(site, project):
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = MAP_SCRIPT
    site.save()
    original = generate_uid()
    a, b = _study(2, original)
    assert receive(a).status == "stored"
    script_state.caches_clear()  # as if the process restarted: only the database remembers
    assert receive(b).status == "stored"
    session = PrearchiveSession.objects.get()
    assert PrearchiveFile.objects.filter(session=session).count() == 2
    assert set(PrearchiveFile.objects.values_list("study_instance_uid", flat=True)) == {session.tag}

    # Another process mapped a value first: this one's own choice loses, the stored one wins.
    ctx = script_state.site_context(study_uid="1.2.3.999")
    theirs = script_state.site_context(study_uid="1.2.3.999")
    ctx.uid_map[(PREFIX, "1.2.3.999")] = PREFIX + ".1"
    theirs.uid_map[(PREFIX, "1.2.3.999")] = PREFIX + ".2"
    assert theirs.commit() is True
    assert ctx.commit() is False
    assert ctx.uid_map.get((PREFIX, "1.2.3.999")) == PREFIX + ".2"


@pytest.mark.django_db
def test_echo_goes_to_the_review_page_and_the_rest_document_not_to_stdout_or_logs(site, project, admin_user,
                                                                                   capfd, caplog):
    caplog.set_level(logging.DEBUG)
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = 'version "6.1"\necho (0010,0010)\n(0010,0010) := "ANON"\n'
    site.save()
    capfd.readouterr()
    result = receive(_study(1, generate_uid())[0])
    assert result.status == "stored"
    out, err = capfd.readouterr()
    assert "Zzechoname" not in out + err + caplog.text
    session = PrearchiveSession.objects.get()
    client = Client()
    client.force_login(admin_user)
    document = client.get(session.uri + "?format=json")
    assert document.status_code == 200
    assert NAME in document.content.decode()
    page = client.get(f"/prearchive/{session.pk}/")
    assert page.status_code == 200 and NAME.replace("^", "^") in page.content.decode()


@pytest.mark.django_db
def test_the_archive_job_keeps_its_project_script_memos_in_the_database(site, project):
    """A resumed archive job (another worker, after a crash) maps each UID as the files written before."""
    from prearchive.services.archive import session_archive, session_archive_request
    from tests.archive.conftest import read_all, ready_session

    project.anon_script = f'version "6.2"\nmapReferencedUIDs["{PREFIX}", "(0020,000D)"]\necho "mapped"\n'
    project.anon_script_enabled = True
    project.save()
    session = ready_session(project="PROJ1", series=((1, "MR", 3),))
    original = session.tag
    session_archive_request(session=session, actor="admin", subject="S1", label="E1")
    assert session_archive(session_id=session.pk) == "archived"
    uids = {str(ds.StudyInstanceUID) for ds in read_all("PROJ1", "E1")}
    assert len(uids) == 1 and next(iter(uids)).startswith(PREFIX + ".")
    script_state.caches_clear()  # another process: only the database remembers
    again = script_state.project_context(project_id="PROJ1", study_uid=original)
    assert again.uid_map.get((PREFIX, original)) == next(iter(uids))
