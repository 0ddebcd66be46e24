"""Issue 16, item 7: the Celery worker survives the death of any pool child, on the embedded broker and on
Redis. The worker runs with the pool its settings choose (no -P: docs/durability.md); every pool child it has
is SIGKILLed (idle children included, so the one holding the pool's queue lock, if any, dies too); then an
archive still runs through that worker, and the master stops on SIGTERM."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from prearchive.models import PrearchiveSession
from tests.conftest import CELERY, ROOT, Proc, redis_flush

from .conftest import fast_site, wait_until
from .helpers import build_now, send

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return found


ARCHIVE = ("import os; from prearchive.models import PrearchiveSession as P; "
           "from prearchive.services.archive import session_archive_request as r; "
           "r(session=P.objects.get(pk=int(os.environ['SESSION_PK'])), actor='test')")


@pytest.mark.parametrize("broker", ["embedded", "redis"])
def test_the_worker_survives_the_death_of_every_pool_child(broker, project, service_env, tmp_path, procs):
    fast_site(idle=3600)
    env = dict(service_env)
    if broker == "embedded":
        env["CELERY_BROKER_URL"] = "filesystem://"  # the broker folders under this test's XNATLITE_VAR_DIR
    else:
        redis_flush()
    study, _sops = send(project="PROJ1", subject="S1", label="S1_MR1", series=((1, 20),))
    session = PrearchiveSession.objects.get(tag=study)
    assert build_now(session.pk) == PrearchiveSession.Status.READY

    master = Proc(CELERY + ["worker", "-l", "INFO", "--concurrency", "2", "-n", f"pool-{broker}@%h",
                            "--without-gossip", "--without-mingle", "--without-heartbeat"],
                  env, tmp_path / "worker.log").start()
    procs.append(master)
    master.wait_for("ready.", timeout=90)
    time.sleep(2)  # the children (if any) are idle, waiting for work: one of them holds the queue lock
    killed = 0
    for _round in range(2):  # the children the master started again die too
        for child in children(master.popen.pid):
            os.kill(child, signal.SIGKILL)
            killed += 1
        time.sleep(3)
    assert master.popen.poll() is None, "the master died with its children"

    # Work still runs through this worker: an archive, queued the way the web process queues it.
    subprocess.run([sys.executable, "manage.py", "shell", "-c", ARCHIVE], env=dict(env, SESSION_PK=str(session.pk)),
                   cwd=ROOT,
                   check=True, timeout=120, capture_output=True)
    wait_until(lambda: not PrearchiveSession.objects.filter(pk=session.pk).exists(), timeout=120,
               what=f"the archive after {killed} pool child(ren) died", procs=[master])

    os.killpg(master.popen.pid, signal.SIGTERM)
    master.popen.wait(timeout=60)  # the master stops on SIGTERM (raises TimeoutExpired if it ignores it)
