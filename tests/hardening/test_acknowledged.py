"""Issue 16, item 1: nothing acknowledged is lost. A scanner in its own process (tests/hardening/scu_proc.py)
sends a study to a real ``manage.py run_dicom_scp``; the receiver is SIGKILLed, or PostgreSQL crashes
(``pg_ctl -m immediate``), or the Celery worker is SIGKILLed mid-build and mid-archive; like a scanner, only
the files that got no Success are sent again; the session is built and archived: every file that got Success
is in the archive, exactly once."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from pydicom import dcmread
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from tests.conftest import redis_flush
from tests.dicom_factory import make_dataset, write_dataset

from .conftest import (HERE, assert_consistent, associations_by_process, fast_site, free_port, local_ports_to,
                       pg_start, pg_stop, receiver, receiver_children, wait_until, worker)
from .helpers import build_now

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = PrearchiveSession.Status


def study_files(folder: Path, *, label: str, count: int, series: int = 3) -> dict[str, Path]:
    """{SOPInstanceUID: file} of one small-image study, routed by its comments as a scanner sends it."""
    folder.mkdir(parents=True)
    study_uid = generate_uid()
    series_uids = [generate_uid() for _ in range(series)]
    files = {}
    for i in range(count):
        ds = make_dataset(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uids[i % series],
                          SeriesNumber=i % series + 1, InstanceNumber=i + 1, rows=8, columns=8,
                          PatientComments=f"Project:PROJ1 Subject:{label} Session:{label}_MR")
        files[str(ds.SOPInstanceUID)] = write_dataset(ds, folder / f"{i:05d}.dcm")
    return files


class Scanner:
    """The sender's side: what it was told about each file (the last answer counts)."""

    def __init__(self, port: int, log: Path):
        self.port, self.log = port, log

    def send(self, paths) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, str(HERE / "scu_proc.py"), str(self.port), str(self.log)]
                                + [str(p) for p in paths], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def answers(self) -> dict[str, int]:
        seen: dict[str, int] = {}
        if self.log.exists():
            for line in self.log.read_text().splitlines():
                parts = line.split()
                if len(parts) == 2:
                    seen[parts[0]] = int(parts[1])
        return seen

    def acknowledged(self) -> set[str]:
        return {sop for sop, status in self.answers().items() if status == 0}

    def resend_the_rest(self, files: dict[str, Path], *, rounds: int = 4) -> None:
        """Send again, as a scanner does, every file that got no Success, until each has one."""
        for _ in range(rounds):
            rest = [path for sop, path in files.items() if sop not in self.acknowledged()]
            if not rest:
                return
            assert self.send(rest).wait(timeout=300) in (0, 2)
        assert self.acknowledged() == set(files)


def archived_sops() -> list[str]:
    return [str(dcmread(p, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
            for p in Path(settings.ARCHIVE_ROOT).rglob("*.dcm")]


def build_and_archive() -> None:
    from prearchive.services.archive import session_archive, session_archive_request

    connections.close_all()
    session = PrearchiveSession.objects.get()
    assert build_now(session.pk) == S.READY
    session.refresh_from_db()
    session_archive_request(session=session, actor="test")
    assert session_archive(session_id=session.pk) == "archived"


def assert_archived_once(acknowledged: set[str], files: dict[str, Path]) -> None:
    archived = archived_sops()
    assert len(archived) == len(set(archived)), "an instance is archived twice"
    assert acknowledged <= set(archived), f"{len(acknowledged - set(archived))} acknowledged file(s) lost"
    assert set(archived) == set(files)
    assert not PrearchiveSession.objects.exists()
    assert_consistent()


def test_receiver_sigkilled_mid_association_loses_no_acknowledged_file(project, service_env, tmp_path, procs):
    fast_site(idle=3600)  # nothing builds by itself
    files = study_files(tmp_path / "scanner", label="ACK1", count=600)
    port = free_port()
    scp = receiver(service_env, tmp_path / "receiver-1.log", port)
    procs.append(scp)
    scanner = Scanner(port, tmp_path / "answers.txt")
    sender = scanner.send(files.values())
    wait_until(lambda: len(scanner.acknowledged()) >= 200, timeout=180, every=0.005, what="200 Success",
               procs=[scp])
    scp.kill()
    sender.wait(timeout=60)
    before_kill = scanner.acknowledged()
    assert 200 <= len(before_kill) < 600, len(before_kill)

    scp2 = receiver(service_env, tmp_path / "receiver-2.log", port)  # start-up recovery runs first
    procs.append(scp2)
    scanner.resend_the_rest(files)
    build_and_archive()
    assert_archived_once(before_kill, files)


def test_one_of_two_receiver_processes_sigkilled_mid_four_associations_loses_nothing(project, service_env, tmp_path,
                                                                                     procs):
    """run_dicom_scp --processes 2, four scanners (one series each) at once; one receiver process is
    SIGKILLed mid-way: its scanners lose their association, the other process's scanners finish undisturbed,
    the supervisor starts the killed one again, the scanners send again what got no Success, and every file
    is stored once, with its row, then archived once."""
    from prearchive.models import PrearchiveFile

    fast_site(idle=3600)
    files = study_files(tmp_path / "scanner", label="ACK4", count=200, series=4)
    items = list(files.items())
    parts = [dict(items[k::4]) for k in range(4)]  # study_files puts file i in series i % 4
    port = free_port()
    scp = receiver(service_env, tmp_path / "receiver.log", port, processes=2)
    procs.append(scp)
    children = receiver_children(scp)
    scanners = [Scanner(port, tmp_path / f"answers-{k}.txt") for k in range(4)]
    senders = [scanner.send(part.values()) for scanner, part in zip(scanners, parts)]
    try:
        def owners() -> dict[int, int]:  # sender index -> the receiver process serving its association
            held = associations_by_process(port, children.values())
            found = {}
            for n, sender in enumerate(senders):
                for local in local_ports_to(sender.pid, port):
                    found.update({n: pid for pid, peers in held.items() if local in peers})
            return found

        wait_until(lambda: len(owners()) == 4 and all(len(s.acknowledged()) >= 10 for s in scanners), timeout=120,
                   every=0.01, what="four associations under way", procs=[scp])
        served = owners()
        load = {pid: [n for n, owner in served.items() if owner == pid] for pid in children.values()}
        victim = min((pid for pid in load if load[pid]), key=lambda pid: len(load[pid]))
        os.kill(victim, signal.SIGKILL)
        codes = [sender.wait(timeout=300) for sender in senders]
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
    for n, code in enumerate(codes):
        if served[n] == victim:
            assert code in (0, 2), code  # (2: the association was lost mid-way)
        else:  # the other process kept serving: nothing lost, nothing to send again
            assert code == 0 and scanners[n].acknowledged() == set(parts[n]), n
    assert any(code == 2 for code in codes), "the kill cut an association"
    before = set().union(*(scanner.acknowledged() for scanner in scanners))
    assert len(before) < len(files)
    slot = next(slot for slot, pid in children.items() if pid == victim)
    scp.wait_for(f"receiver process {slot} (pid {victim}) ended (signal SIGKILL)", timeout=30)
    wait_until(lambda: receiver_children(scp)[slot] != victim, timeout=60, what="the killed process restarted")
    for scanner, part in zip(scanners, parts):
        scanner.resend_the_rest(part)
    rows = list(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert sorted(rows) == sorted(files), "every file stored once, with its row"
    assert len(list(Path(settings.PREARCHIVE_ROOT).rglob("*.dcm"))) == len(files)
    build_and_archive()
    assert_archived_once(before, files)


def test_postgresql_crash_mid_association_loses_no_acknowledged_file(project, service_env, postgres_restartable,
                                                                     tmp_path, procs):
    fast_site(idle=3600)
    files = study_files(tmp_path / "scanner", label="ACK2", count=500)
    port = free_port()
    scp = receiver(service_env, tmp_path / "receiver.log", port)
    procs.append(scp)
    scanner = Scanner(port, tmp_path / "answers.txt")
    sender = scanner.send(files.values())
    wait_until(lambda: len(scanner.acknowledged()) >= 150, timeout=180, every=0.005, what="150 Success",
               procs=[scp])
    pg_stop("immediate")  # a crash: what was not flushed to the WAL is gone
    time.sleep(1.5)
    pg_start()
    sender.wait(timeout=300)
    first_pass = scanner.acknowledged()
    assert scp.popen.poll() is None, "the receiver died"
    assert len(first_pass) < 500, "no file was refused while PostgreSQL was down: the test missed its window"
    assert {s for s in scanner.answers().values() if s != 0} <= {0xA700, 0xC211, -1}

    scanner.resend_the_rest(files)
    build_and_archive()
    assert_archived_once(first_pass, files)


def test_worker_sigkilled_mid_build_and_mid_archive_loses_no_acknowledged_file(project, fault_env, tmp_path,
                                                                                procs):
    from prearchive.services.archive import session_archive_request
    from prearchive.services.rebuild import session_rebuild_request

    fast_site(idle=3600)
    redis_flush()
    files = study_files(tmp_path / "scanner", label="ACK3", count=300)
    port = free_port()
    scp = receiver(fault_env, tmp_path / "receiver.log", port)
    procs.append(scp)
    scanner = Scanner(port, tmp_path / "answers.txt")
    scanner.resend_the_rest(files)
    acknowledged = scanner.acknowledged()
    session = PrearchiveSession.objects.get()

    def status() -> str | None:
        return PrearchiveSession.objects.filter(pk=session.pk).values_list("status", flat=True).first()

    # The build: its worker killed while it runs; the next worker builds it again.
    victim = worker(fault_env, tmp_path / "victim-build.log", name="vb", build_delay=60)
    procs.append(victim)
    session_rebuild_request(session=session, actor="test")
    wait_until(lambda: status() == S.BUILDING, timeout=60, every=0.02, what="BUILDING", procs=[victim])
    victim.kill()
    rescuer = worker(fault_env, tmp_path / "rescuer-build.log", name="rb")
    procs.append(rescuer)
    wait_until(lambda: status() == S.READY, timeout=90, what="READY after the restart", procs=[rescuer])
    rescuer.stop()
    session.refresh_from_db()
    assert session.file_count == 300

    # The archive: its worker killed midway; the next worker finishes it once.
    redis_flush()
    victim = worker(fault_env, tmp_path / "victim-archive.log", name="va")
    procs.append(victim)
    session_archive_request(session=session, actor="test")
    partial = Path(settings.ARCHIVE_ROOT) / "PROJ1" / "arc001" / f".ACK3_MR.partial-{session.pk}"
    wait_until(lambda: partial.exists() and sum(1 for _ in partial.rglob("*.dcm")) >= 30, timeout=90,
               every=0.005, what="the archive midway", procs=[victim])
    victim.kill()
    assert status() == S.ARCHIVING
    rescuer = worker(fault_env, tmp_path / "rescuer-archive.log", name="ra")
    procs.append(rescuer)
    wait_until(lambda: status() is None, timeout=120, what="the archive to finish", procs=[rescuer])
    assert_archived_once(acknowledged, files)
