"""Helpers of the hardening tests: real worker/beat/receiver processes on the test database, PostgreSQL and
Redis restarts (always left running with the options scripts/test gave them), and the consistency checks
every fault test ends with: no session in a transient status, every prearchive file on disk has its row and
every row its file, no temporary or partial files, no duplicate archive copies."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from tests.conftest import CELERY, Proc, wait_until  # noqa: F401 - wait_until: the tests import it from here

HERE = Path(__file__).resolve().parent
TRANSIENT = ("QUEUED_BUILDING", "BUILDING", "QUEUED_ARCHIVING", "ARCHIVING", "QUEUED_MOVING", "MOVING",
             "QUEUED_DELETING", "DELETING", "QUEUED_SEPARATING", "SEPARATING", "RECEIVING_INTERRUPT")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ processes


@pytest.fixture
def fault_env(service_env):
    """service_env for processes that read tests/hardening/fault_settings.py."""
    return dict(service_env, DJANGO_SETTINGS_MODULE="tests.hardening.fault_settings")


def worker(env: dict, log: Path, *, name: str = "w1", loglevel: str = "INFO", pause_after: str = "",
           flag: Path | None = None, build_delay: float = 0.0) -> Proc:
    env = dict(env, XNATLITE_TEST_BUILD_DELAY=str(build_delay))
    if pause_after:
        env.update(XNATLITE_FAULT_PAUSE_AFTER=pause_after, XNATLITE_FAULT_FLAG=str(flag))
    args = [sys.executable, str(HERE / "fault_worker.py"), "worker", "-P", "solo", "-n", f"{name}@%h",
            "-l", loglevel, "--without-gossip", "--without-mingle", "--without-heartbeat"]
    proc = Proc(args, env, log).start()
    proc.wait_for("ready.", timeout=60)
    return proc


def beat(env: dict, log: Path, *, loglevel: str = "INFO") -> Proc:
    proc = Proc(CELERY + ["beat", "-l", loglevel, "-s", str(log.with_suffix(".schedule"))], env, log).start()
    proc.wait_for("beat: Starting", timeout=60)
    return proc


def receiver(env: dict, log: Path, port: int, *, processes: int = 1) -> Proc:
    """``run_dicom_scp --only`` on ``port``; with ``processes`` > 1 the supervisor says the port is listening
    once every receiver process listens on it."""
    proc = Proc([sys.executable, "manage.py", "run_dicom_scp", "--port", str(port), "--ae-title", "XNATLITE",
                 "--only", "--processes", str(processes)], env, log).start()
    proc.wait_for(f"listening on 127.0.0.1:{port}", timeout=60)
    return proc


def receiver_children(proc: Proc) -> dict[int, int]:
    """{slot: pid} of the receiver processes a ``run_dicom_scp --processes N`` supervisor started last."""
    import re

    return {int(slot): int(pid) for slot, pid in
            re.findall(r"receiver process (\d+) started \(pid (\d+)\)", proc.text())}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for fd in fd_dir.iterdir() if fd_dir.is_dir() else ():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _tcp_established() -> list[tuple[int, int, str]]:
    """(local port, remote port, socket inode) of every established IPv4 TCP socket (/proc/net/tcp)."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "01":  # ESTABLISHED
            found.append((int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16), fields[9]))
    return found


def associations_by_process(port: int, pids) -> dict[int, set[int]]:
    """{pid: the peer ports of the established TCP connections to 127.0.0.1:``port`` that pid holds}, from
    /proc/net/tcp and each process's open sockets: which receiver process serves which association."""
    held = {pid: _socket_inodes(pid) for pid in pids}
    found: dict[int, set[int]] = {pid: set() for pid in pids}
    for local, remote, inode in _tcp_established():
        if local == port:
            for pid, inodes in held.items():
                if inode in inodes:
                    found[pid].add(remote)
    return found


def local_ports_to(pid: int, port: int) -> set[int]:
    """The local ports of ``pid``'s established connections to ``port`` (a sender's side of its associations)."""
    inodes = _socket_inodes(pid)
    return {local for local, remote, inode in _tcp_established() if remote == port and inode in inodes}


@pytest.fixture
def procs():
    """Processes a test starts; all stopped at the end, pass or fail."""
    started: list[Proc] = []
    yield started
    for proc in reversed(started):
        proc.stop()


def fast_site(*, idle: int = 2, sweep_ms: int = 1000, site_script: str = ""):
    """Session Idle Time ``idle`` seconds (with PREARCHIVE_IDLE_UNIT_SECONDS=1), the sweep every
    ``sweep_ms``; the site-wide anonymization script off unless given."""
    from xnatlite.selectors import site_config_get
    from xnatlite.services import idle_schedule_sync

    config = site_config_get()
    config.enable_sitewide_anonymization_script = bool(site_script)
    config.sitewide_anonymization_script = site_script or config.sitewide_anonymization_script
    config.session_xml_rebuilder_interval = idle
    config.session_xml_rebuilder_repeat = sweep_ms
    config.enable_dicom_receiver = True
    config.save()
    idle_schedule_sync(config=config)
    return config


# ------------------------------------------------------------------ PostgreSQL and Redis


def _pg_ctl(*args: str) -> subprocess.CompletedProcess:
    pg_bin, data = os.environ["XNATLITE_TEST_PG_BIN"], os.environ["XNATLITE_TEST_PGDATA"]
    as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
    log = Path(os.environ.get("XNATLITE_TEST_WORK", "/tmp")) / "pg" / "postgres-restarted.log"
    return subprocess.run(as_pg + [f"{pg_bin}/pg_ctl", "-D", data, "-l", str(log), *args],
                          capture_output=True, text=True, timeout=120)


def pg_ready() -> bool:
    pg_bin, port = os.environ["XNATLITE_TEST_PG_BIN"], os.environ["XNATLITE_TEST_PG_PORT"]
    return subprocess.run([f"{pg_bin}/pg_isready", "-q", "-h", "127.0.0.1", "-p", port]).returncode == 0


def pg_stop(mode: str = "fast") -> None:
    """Fast shutdown: every client connection is cut, as when the database server restarts. ``immediate``:
    as a crash of the server (no checkpoint; the next start replays the WAL)."""
    from django.db import connections

    connections.close_all()
    result = _pg_ctl("stop", "-m", mode, "-w")
    assert result.returncode == 0, result.stdout + result.stderr


def _pg_options() -> str:
    """The options of the server's last run (postmaster.opts holds its command line), without -D."""
    import shlex

    opts = Path(os.environ["XNATLITE_TEST_PGDATA"]) / "postmaster.opts"
    words = shlex.split(opts.read_text())[1:]
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "-D":
            skip = True
        else:
            kept.append(word)
    return shlex.join(kept)


def pg_start() -> None:
    """Start PostgreSQL again with exactly the options scripts/test gave it (read from postmaster.opts)."""
    from django.db import connections

    if not pg_ready():
        result = _pg_ctl("start", "-w", "-t", "60", "-o", _pg_options())
        assert result.returncode == 0, result.stdout + result.stderr
    wait_until(pg_ready, timeout=60, what="PostgreSQL")
    connections.close_all()


@pytest.fixture
def postgres_restartable():
    """Whatever the test does to PostgreSQL, it is running again when the test ends."""
    if "XNATLITE_TEST_PGDATA" not in os.environ:
        pytest.fail("run the suite with bash scripts/test: it exports the throwaway cluster's data folder")
    yield
    pg_start()


def redis_stop() -> None:
    port = os.environ["XNATLITE_TEST_REDIS_PORT"]
    subprocess.run(["redis-cli", "-p", port, "shutdown", "nosave"], capture_output=True, timeout=30)
    wait_until(lambda: not redis_up(), timeout=30, what="Redis to stop")


def redis_up() -> bool:
    port = os.environ["XNATLITE_TEST_REDIS_PORT"]
    return subprocess.run(["redis-cli", "-p", port, "ping"], capture_output=True, text=True,
                          timeout=10).stdout.strip() == "PONG"


def redis_start() -> None:
    if not redis_up():
        port = os.environ["XNATLITE_TEST_REDIS_PORT"]
        log = Path(os.environ.get("XNATLITE_TEST_WORK", "/tmp")) / "redis-restarted.log"
        subprocess.run(["redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                        "--daemonize", "yes", "--logfile", str(log)], check=True, timeout=30)
    wait_until(redis_up, timeout=30, what="Redis")


@pytest.fixture
def redis_restartable():
    yield
    redis_start()


# ------------------------------------------------------------------ consistency


def tree_files(root: Path) -> list[Path]:
    return sorted(p for p in Path(root).rglob("*") if p.is_file())


def assert_consistent(*, allow_statuses: tuple[str, ...] = ()) -> dict:
    """The end state after a fault. Returns counts for the caller's own checks."""
    from prearchive.models import PrearchiveFile, PrearchiveSession
    from xnatlite.models import ImageSession, Scan

    stuck = list(PrearchiveSession.objects.filter(status__in=TRANSIENT).exclude(status__in=allow_statuses)
                 .values_list("pk", "status"))
    assert not stuck, f"sessions left in a transient status: {stuck}"

    pre_root = Path(settings.PREARCHIVE_ROOT)
    on_disk = set()
    for path in tree_files(pre_root):
        rel = path.relative_to(pre_root)
        assert not path.name.startswith("."), f"temporary file left in the prearchive: {rel}"
        if path.suffix == ".dcm":
            on_disk.add(str(rel))
    rows = set()
    for session in PrearchiveSession.objects.all():
        for rel in PrearchiveFile.objects.filter(session=session).values_list("relative_path", flat=True):
            rows.add(f"{session.relative_dir}/{rel}")
    assert on_disk - rows == set(), f"orphan files (no row): {sorted(on_disk - rows)[:5]}"
    assert rows - on_disk == set(), f"rows without a file: {sorted(rows - on_disk)[:5]}"
    sops = list(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert len(sops) == len(set(sops)), "an instance is stored twice in the prearchive"

    arc_root = Path(settings.ARCHIVE_ROOT)
    archived = {}
    for project_dir in (p for p in arc_root.iterdir() if p.is_dir()) if arc_root.exists() else ():
        arc = project_dir / "arc001"
        names = sorted(p.name for p in arc.iterdir()) if arc.exists() else []
        assert not [n for n in names if n.startswith(".")], f"partial/old archive folders left: {names}"
        for label in names:
            files = [p for p in tree_files(arc / label)
                     if not p.name.startswith(".xnatlite") and not p.name.endswith("_catalog.xml")]
            assert not [p for p in files if p.name.startswith(".")], f"temporary files in {label}"
            archived[(project_dir.name, label)] = files
    for record in ImageSession.objects.all():
        files = archived.pop((record.project_id, record.label), None)
        assert files is not None, f"archived session {record} has no folder"
        counted = sum(Scan.objects.filter(session=record).values_list("file_count", flat=True))
        assert len(files) == counted, f"{record}: {len(files)} files on disk, {counted} recorded"
    assert not archived, f"archive folders without a record: {list(archived)}"
    upload_tmp = Path(settings.UPLOAD_TMP_ROOT)
    leftovers = [p for p in tree_files(upload_tmp) if p.name.startswith("scp-")] if upload_tmp.exists() else []
    assert not leftovers, f"receiver temporary files left: {leftovers[:5]}"
    return {"prearchive_files": len(rows), "archived_files": sum(len(f) for f in archived.values())}


def sop_of(path: Path) -> str:
    from pydicom import dcmread

    return str(dcmread(path, stop_before_pixels=True, specific_tags=["SOPInstanceUID"]).SOPInstanceUID)
