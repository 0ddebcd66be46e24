"""``run_dicom_scp --processes N`` (N > 1): a supervisor and N receiver processes.

The supervisor starts N children, each ``manage.py run_dicom_scp --child`` with the same options: a whole
receiver of its own (its row writer, AE whitelists, per-receiver routing, the reload loop over the admin's
receivers) that binds every receiver port with SO_REUSEPORT, so the kernel spreads the incoming connections
over the children. The children are separate interpreters started with fork+exec (subprocess): nothing of
the supervisor (no database connection, no thread, no lock) is carried into them.

The supervisor itself serves nothing. It runs start-up recovery once, before any child starts (a restarted
child does not: its siblings are receiving, and the files a killed child left without a row were never
acknowledged, so their senders send them again; the builder and the archive adopt any that are not).
It reads each child's output: a port is announced as listening once every running child listens on it,
and as stopped once none does, so the lines are the single-process receiver's. A child that dies is started
again after a pause that doubles from BACKOFF_FIRST up to BACKOFF_MAX seconds (back to the first after a
child ran BACKOFF_RESET_AFTER seconds). SIGTERM or SIGINT stops the children (SIGTERM, each writes the rows
of its last files) and waits for them; a child that has not ended after STOP_WAIT seconds is killed.
A child whose supervisor dies gets SIGTERM (PR_SET_PDEATHSIG) and stops too.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

logger = logging.getLogger("upload.dicom_scp")

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 30.0
BACKOFF_RESET_AFTER = 60.0
STOP_WAIT = 60.0

LISTENING = re.compile(r"^DICOM receiver \S+ listening on \S+:(?P<port>\d+)$")
STOPPED = re.compile(r"^DICOM receiver on port (?P<port>\d+) stopped$")
ENDED = "DICOM receiver stopped"


@dataclass
class _Child:
    slot: int
    popen: subprocess.Popen | None = None
    reader: threading.Thread | None = None
    started: float = 0.0
    reading: bool = False                                  # its output is open: it counts for announcements
    ports: dict[int, str] = field(default_factory=dict)    # port -> its "listening" line
    delay: float = BACKOFF_FIRST
    restart_at: float | None = None


def _ended_how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class Supervisor:
    """See the module docstring. ``command``: the child's command line; ``say``: one line of output."""

    def __init__(self, *, processes: int, command: list[str], say: Callable[[str], None]):
        self.command, self.say = command, say
        self.children = [_Child(slot=n + 1, delay=BACKOFF_FIRST) for n in range(processes)]
        self._lock = threading.Lock()
        self._announced: dict[int, str] = {}
        self._stopping = False

    # ------------------------------------------------------------------ the children

    def _spawn(self, child: _Child) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        popen = subprocess.Popen(self.command + ["--child", str(os.getpid())], stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, env=env, text=True, bufsize=1, errors="replace")
        with self._lock:
            child.popen, child.started, child.restart_at = popen, time.monotonic(), None
            child.reading, child.ports = True, {}
        child.reader = threading.Thread(target=self._read, args=(child, popen), daemon=True,
                                        name=f"receiver-{child.slot}-output")
        child.reader.start()
        self.say(f"receiver process {child.slot} started (pid {popen.pid})")

    def _read(self, child: _Child, popen: subprocess.Popen) -> None:
        """A child's output: its ports, and any other line passed on."""
        assert popen.stdout is not None
        for raw in popen.stdout:
            line = raw.rstrip("\n")
            listening, stopped = LISTENING.match(line), STOPPED.match(line)
            if listening or stopped:
                with self._lock:
                    if listening:
                        child.ports[int(listening["port"])] = line
                    else:
                        child.ports.pop(int(stopped["port"]), None)
                    self._announce()
            elif line and line != ENDED:
                self.say(line)
        with self._lock:
            child.reading, child.ports = False, {}
            self._announce()

    def _announce(self) -> None:
        """(Under the lock.) A port every running child listens on is listening; one no child has, stopped."""
        live = [c for c in self.children if c.reading]
        for child in live:
            for port, line in child.ports.items():
                if port not in self._announced and all(port in c.ports for c in live):
                    self._announced[port] = line
                    self.say(line)
        for port in list(self._announced):
            if not self._stopping and not any(port in c.ports for c in live):
                del self._announced[port]
                self.say(f"DICOM receiver on port {port} stopped")

    def _check(self, child: _Child, now: float) -> None:
        popen = child.popen
        if child.restart_at is not None:
            if now >= child.restart_at:
                self._spawn(child)
            return
        if popen is None or popen.poll() is None:
            return
        if now - child.started >= BACKOFF_RESET_AFTER:
            child.delay = BACKOFF_FIRST
        logger.error("DICOM receiver process %d (pid %d) ended (%s); started again in %g s", child.slot,
                     popen.pid, _ended_how(popen.returncode), child.delay)
        self.say(f"receiver process {child.slot} (pid {popen.pid}) ended ({_ended_how(popen.returncode)}); "
                 f"started again in {child.delay:g} s")
        child.restart_at = now + child.delay
        child.delay = min(child.delay * 2, BACKOFF_MAX)

    # ------------------------------------------------------------------ the supervisor's loop

    def run(self, stop: threading.Event) -> None:
        try:
            for child in self.children:
                if not stop.is_set():
                    self._spawn(child)
            while not stop.wait(0.2):
                now = time.monotonic()
                for child in self.children:
                    self._check(child, now)
        finally:
            self._stop_all()

    def _stop_all(self) -> None:
        with self._lock:
            self._stopping = True  # the ports close with the children: "DICOM receiver stopped" says it
        running = [c.popen for c in self.children if c.popen is not None and c.popen.poll() is None]
        for popen in running:
            try:
                popen.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + STOP_WAIT
        for popen in running:
            try:
                popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                logger.error("DICOM receiver process (pid %d) did not stop within %.0f s: killed", popen.pid,
                             STOP_WAIT)
                popen.kill()
                popen.wait()
        for child in self.children:
            if child.reader is not None:
                child.reader.join(timeout=5)


# ---------------------------------------------------------------------- the child's side

PR_SET_PDEATHSIG = 1


def parent_watch(parent_pid: int) -> Callable[[], bool]:
    """In a child: SIGTERM when the supervisor dies (Linux), and a check the reload loop calls: False once
    the supervisor ``parent_pid`` is gone (it died before the signal was asked for, or on another system)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass
    return lambda: os.getppid() == parent_pid
