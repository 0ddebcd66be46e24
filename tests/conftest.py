"""Shared fixtures: storage roots per test, personas, and real Celery worker/beat processes.

The suite runs against real PostgreSQL and Redis (scripts/test starts throwaway ones); it refuses to run
on the embedded default rather than skip.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "test-output"


def _django_active(config) -> bool:
    return config.pluginmanager.hasplugin("django")


def pytest_sessionstart(session) -> None:
    if not _django_active(session.config):
        return
    url = os.environ.get("DATABASE_URL", "")
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not url.startswith(("postgres://", "postgresql://")) or not broker.startswith("redis://"):
        raise pytest.UsageError(
            "The tests need real PostgreSQL and Redis: run them with `bash scripts/test` "
            "(it installs and starts both), or set DATABASE_URL and CELERY_BROKER_URL."
        )


def _drop_dead_connections() -> None:
    """A test that restarted PostgreSQL (tests/hardening) leaves idle connections dead. Django keeps
    connections per thread, or per context while an event loop runs (Playwright's sync API runs one), so
    this is called both before each test and inside the browser fixture."""
    from django.db import connections

    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
            conn.close()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item) -> None:
    if _django_active(item.config):
        _drop_dead_connections()


@pytest.fixture(autouse=True)
def _storage_roots(request, tmp_path):
    """Every test gets its own prearchive, archive and upload folders."""
    if not _django_active(request.config):
        yield None
        return
    settings = request.getfixturevalue("settings")
    # Logins in tests need not cost a real password hash (production keeps Django's PBKDF2).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    roots = {name: tmp_path / name.lower() for name in ("PREARCHIVE_ROOT", "ARCHIVE_ROOT", "UPLOAD_TMP_ROOT")}
    for name, path in roots.items():
        path.mkdir()
        setattr(settings, name, path)
    yield roots


@pytest.fixture(autouse=True)
def _clear_intake_hints(request):
    """Intake keeps a per-process cache of recent sessions; no test may see another's."""
    if not _django_active(request.config):
        yield
        return
    from prearchive.services import intake, residual, script_state

    intake._SESSION_HINTS.clear()
    script_state.caches_clear()
    residual.known_clear()
    yield
    intake._SESSION_HINTS.clear()
    script_state.caches_clear()
    residual.known_clear()


# ------------------------------------------------------------------ personas


@pytest.fixture
def site(db):
    """The site settings, with the site-wide anonymization script off unless a test turns it on."""
    from xnatlite.selectors import site_config_get

    config = site_config_get()
    config.enable_sitewide_anonymization_script = False
    config.save()
    return config


@pytest.fixture
def admin_user(db, django_user_model):
    """The site admin, named 'admin' as XNAT's default received-file user."""
    return django_user_model.objects.create_superuser("admin", "admin@example.org", "admin-pass-1")


@pytest.fixture
def project(db):
    from xnatlite.models import Project

    return Project.objects.create(id="PROJ1", name="Project One", prearchive_code=0)


def _member(django_user_model, project, name, role):
    from xnatlite.models import ProjectMember

    user = django_user_model.objects.create_user(name, f"{name}@example.org", f"{name}-pass-1")
    if role:
        ProjectMember.objects.create(project=project, user=user, role=role)
    return user


@pytest.fixture
def owner(db, django_user_model, project):
    return _member(django_user_model, project, "olivia", "owner")


@pytest.fixture
def member(db, django_user_model, project):
    return _member(django_user_model, project, "mike", "member")


@pytest.fixture
def collaborator(db, django_user_model, project):
    return _member(django_user_model, project, "carla", "collaborator")


@pytest.fixture
def outsider(db, django_user_model, project):
    return _member(django_user_model, project, "oscar", None)


# ------------------------------------------------------------------ real processes


@pytest.fixture
def service_env(transactional_db, settings, tmp_path):
    """The environment for a subprocess (worker, beat, receiver) that must see this test's database
    and folders. Tests using it run with transaction=True so the processes see committed rows."""
    from django.db import connection

    db = connection.settings_dict
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        PREARCHIVE_ROOT=str(settings.PREARCHIVE_ROOT),
        ARCHIVE_ROOT=str(settings.ARCHIVE_ROOT),
        UPLOAD_TMP_ROOT=str(settings.UPLOAD_TMP_ROOT),
        XNATLITE_VAR_DIR=str(tmp_path / "var"),
        PYTHONUNBUFFERED="1",
    )
    return env


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(os.environ["CELERY_BROKER_URL"]).flushdb()


class Proc:
    """A child process with its log file; ``wait_for`` polls the log for a line."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.args, self.env, self.log = args, env, log
        self.popen: subprocess.Popen | None = None

    def start(self) -> "Proc":
        self._fh = open(self.log, "ab")
        self.popen = subprocess.Popen(self.args, env=self.env, cwd=ROOT, stdout=self._fh,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def wait_for(self, needle: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return
            if self.popen and self.popen.poll() is not None:
                raise AssertionError(f"{self.args[2:4]} exited early:\n{self.text()[-3000:]}")
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {needle!r}:\n{self.text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            self.popen.wait(timeout=20)

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        if hasattr(self, "_fh"):
            self._fh.close()


CELERY = [sys.executable, "-m", "celery", "-A", "xnatlite"]


def start_worker(env: dict[str, str], log: Path, *, name: str = "w1") -> Proc:
    proc = Proc(CELERY + ["worker", "-P", "solo", "-n", f"{name}@%h", "-l", "INFO", "--without-gossip",
                          "--without-mingle", "--without-heartbeat"], env, log).start()
    proc.wait_for("ready.", timeout=60)
    return proc


def start_beat(env: dict[str, str], log: Path) -> Proc:
    proc = Proc(CELERY + ["beat", "-l", "DEBUG", "-s", str(log.with_suffix(".schedule"))], env, log).start()
    proc.wait_for("beat: Starting", timeout=60)
    return proc


@pytest.fixture
def celery_worker(service_env, tmp_path):
    redis_flush()
    proc = start_worker(service_env, tmp_path / "worker.log")
    yield proc
    proc.stop()


@pytest.fixture
def celery_beat(service_env, tmp_path):
    proc = start_beat(service_env, tmp_path / "beat.log")
    yield proc
    proc.stop()


def wait_until(check, *, timeout: float = 60.0, every: float = 0.1, what: str = "condition", procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    logs = "\n".join(f"--- {p.log.name}\n{p.text()[-3000:]}" for p in procs)
    raise AssertionError(f"timed out waiting for {what}\n{logs}")


# ------------------------------------------------------------------ browser


CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]


@pytest.fixture
def browser_page(tmp_path, monkeypatch):
    """A Playwright page in Debian's Chromium (Playwright's own browser download cannot work here)."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the tests' ORM calls are plain and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as pw:
        _drop_dead_connections()
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(20000)
        yield page
        context.close()
        browser.close()


def screenshot(page, name: str) -> Path:
    OUTPUT.mkdir(exist_ok=True)
    path = OUTPUT / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
