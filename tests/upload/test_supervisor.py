"""upload/supervisor.py with stand-in children (small Python processes, no receiver): the restart backoff, the
announcements (a port once every child listens, stopped once none does) and the stop."""
from __future__ import annotations

import sys
import threading
import time

from upload import supervisor
from upload.supervisor import Supervisor


def _run(command: list[str], *, processes: int, seconds: float) -> list[str]:
    said: list[str] = []
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            said.append(line)

    stop = threading.Event()
    runner = threading.Thread(target=Supervisor(processes=processes, command=command, say=say).run, args=(stop,))
    runner.start()
    time.sleep(seconds)
    stop.set()
    runner.join(timeout=30)
    assert not runner.is_alive()
    return said


def test_a_child_that_keeps_dying_is_started_again_later_each_time(monkeypatch):
    monkeypatch.setattr(supervisor, "BACKOFF_FIRST", 0.3)
    said = _run([sys.executable, "-c", "import sys; sys.exit(3)"], processes=1, seconds=2.4)
    ended = [line for line in said if "ended (exit code 3)" in line]
    assert 2 <= len(ended) <= 4, said  # started at 0, 0.3, 0.9, 2.1 s: the pause doubles
    assert [line.rsplit("again in ", 1)[1] for line in ended] == ["0.3 s", "0.6 s", "1.2 s", "2.4 s"][:len(ended)]
    starts = sum(line.startswith("receiver process 1 started") for line in said)
    assert starts in (len(ended), len(ended) + 1)  # (the last restart may still have been waiting)


CHILD = """
import os, random, signal, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("DICOM receiver A listening on 127.0.0.1:7001", flush=True)
time.sleep(random.random() * 0.4)
print("DICOM receiver B listening on 127.0.0.1:7002", flush=True)
time.sleep(0.6)
print("DICOM receiver on port 7002 stopped", flush=True)
signal.sigwait({signal.SIGTERM})
print("DICOM receiver stopped", flush=True)
"""


def test_ports_are_announced_once_for_all_children_and_stopped_once_none_listens():
    said = _run([sys.executable, "-c", CHILD], processes=2, seconds=2.5)
    lines = [line for line in said if not line.startswith("receiver process")]
    assert lines == ["DICOM receiver A listening on 127.0.0.1:7001", "DICOM receiver B listening on 127.0.0.1:7002",
                     "DICOM receiver on port 7002 stopped"], said
    assert not [line for line in said if "ended (" in line]  # stopped by SIGTERM, not restarted
