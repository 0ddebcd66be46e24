"""upload/supervisor.py with stand-in children (small Python processes, no receiver): the restart backoff, the
announcements (a port once every child listens, stopped once none does) and the stop."""
from __future__ import annotations

import sys
import threading
import time

from upload import supervisor
from upload.supervisor import Supervisor


def _run(command: list[str], *, processes: int, steps) -> list[str]:
    """Run a supervisor; ``steps``: (condition on the lines said so far, action) pairs, each waited for in turn
    (60 s at most: the children are Python processes, slow to start on a busy machine); then stop it."""
    said: list[str] = []
    lock = threading.Lock()

    def say(line: str) -> None:
        with lock:
            said.append(line)

    stop = threading.Event()
    runner = threading.Thread(target=Supervisor(processes=processes, command=command, say=say).run, args=(stop,))
    runner.start()
    try:
        for condition, action in steps:
            deadline = time.monotonic() + 60
            while not condition(list(said)):
                assert time.monotonic() < deadline, said
                time.sleep(0.02)
            action()
    finally:
        stop.set()
        runner.join(timeout=60)
    assert not runner.is_alive()
    return said


def _ended(said: list[str]) -> list[str]:
    return [line for line in said if "ended (exit code 3)" in line]


def test_a_child_that_keeps_dying_is_started_again_later_each_time(monkeypatch):
    monkeypatch.setattr(supervisor, "BACKOFF_FIRST", 0.3)
    said = _run([sys.executable, "-c", "import sys; sys.exit(3)"], processes=1,
                steps=[(lambda said: len(_ended(said)) >= 3, lambda: None)])
    ended = _ended(said)
    assert [line.rsplit("again in ", 1)[1] for line in ended[:3]] == ["0.3 s", "0.6 s", "1.2 s"]  # doubling
    starts = sum(line.startswith("receiver process 1 started") for line in said)
    assert starts in (len(ended), len(ended) + 1)  # (the last restart may still have been waiting)


CHILD = """
import os, random, signal, time
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
print("DICOM receiver A listening on 127.0.0.1:7001", flush=True)
time.sleep(random.random() * 0.4)
print("DICOM receiver B listening on 127.0.0.1:7002", flush=True)
while not os.path.exists(os.environ["FLAG"]):
    time.sleep(0.02)
time.sleep(random.random() * 0.4)
print("DICOM receiver on port 7002 stopped", flush=True)
signal.sigwait({signal.SIGTERM})
print("DICOM receiver stopped", flush=True)
"""


def test_ports_are_announced_once_for_all_children_and_stopped_once_none_listens(tmp_path, monkeypatch):
    flag = tmp_path / "flag"
    monkeypatch.setenv("FLAG", str(flag))
    b = "DICOM receiver B listening on 127.0.0.1:7002"
    said = _run([sys.executable, "-c", CHILD], processes=2,
                steps=[(lambda said: b in said, flag.touch),
                       (lambda said: "DICOM receiver on port 7002 stopped" in said, lambda: None)])
    lines = [line for line in said if not line.startswith("receiver process")]
    assert lines == ["DICOM receiver A listening on 127.0.0.1:7001", "DICOM receiver B listening on 127.0.0.1:7002",
                     "DICOM receiver on port 7002 stopped"], said
    assert not [line for line in said if "ended (" in line]  # stopped by SIGTERM, not restarted
