"""Issue 16, item 9: on SQLite (the embedded default) a job holds a lease on its session that ends only when
its process ends, so two archives of one session cannot run at once, and the lease is free again once the
process holding it is SIGKILLed (the next worker resumes the job). Real processes on a real SQLite database."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from tests.conftest import ROOT, Proc

pytestmark = [pytest.mark.slow]

HOLD = """
import time
from django.db import connection
from prearchive.services import joblock
assert connection.vendor == "sqlite"
with joblock.job_lock("session", 42) as got:
    print("held" if got else "not held", flush=True)
    time.sleep(300)
"""

PROBE = """
from django.db import connection
from prearchive.services.archive import session_archive
from prearchive.services.joblock import job_lock_free
assert connection.vendor == "sqlite"
print("free" if job_lock_free("session", 42) else "busy", session_archive(session_id=42))
"""


def shell(env, code: str) -> str:
    out = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], env=env, cwd=ROOT, text=True,
                         capture_output=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_a_second_archive_of_a_session_waits_for_the_first_and_a_killed_holder_frees_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'xnatlite.sqlite3'}", XNATLITE_VAR_DIR=str(tmp_path / "var"),
               CELERY_BROKER_URL="filesystem://", DJANGO_SETTINGS_MODULE="xnatlite.settings", PYTHONUNBUFFERED="1",
               PREARCHIVE_ROOT=str(tmp_path / "pre"), ARCHIVE_ROOT=str(tmp_path / "arc"),
               UPLOAD_TMP_ROOT=str(tmp_path / "tmp"))
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput"], env=env, cwd=ROOT, check=True,
                   capture_output=True, timeout=300)
    holder = Proc([sys.executable, "manage.py", "shell", "-c", HOLD], env, tmp_path / "holder.log").start()
    try:
        holder.wait_for("held", timeout=120)
        # A second archive job of the same session (the idle sweep re-queued it) finds the lease taken.
        assert shell(env, PROBE) == "busy busy"
        holder.kill(signal.SIGKILL)
        assert shell(env, PROBE) == "free skipped"  # the lease died with its process: the job may resume
    finally:
        holder.stop()
