"""``manage.py bench_load [--files 2000] [--rows 128]``: the load benchmark of issue 7.

Starts the real processes a site runs (the DICOM receiver ``run_dicom_scp``, the web server under gunicorn,
one Celery worker), then at the same time drives 4 C-STORE associations (dcmtk's storescu, one process each)
and 2 zip uploads to ``/data/services/import`` while a reviewer archives another session through
``/data/services/archive``.
Prints files/s, the slowest response (one C-STORE, one upload, the archive) and the count check: every file
sent is in the prearchive exactly once, and every file of the archived session is in the archive once.

Run against PostgreSQL and Redis, e.g. ``bash scripts/with-services .venv/bin/python manage.py bench_load``.
Writes into throwaway folders; the rows it creates stay in the (throwaway) database. Exit 1 if a count is off.

The senders are storescu, not pynetdicom's SCU: under this load pynetdicom's requestor now and then loses
the receiver's response to its own reactor thread (``send_c_store`` pauses the reactor with a flag the
reactor sets before it waits and clears only after it has run again; a response that arrives in that gap is
taken as "unexpected", and the sender waits for its DIMSE timeout and aborts: 2 runs of 5 lost an
association so, although the receiver had answered Success; tests/upload/test_dicom_scp.py shows it).
"""
from __future__ import annotations

import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import zipfile
from base64 import b64encode
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

ROOT = Path(__file__).resolve().parents[3]
STORESCU = "/usr/bin/storescu"  # dcmtk's (pynetdicom installs a storescu of its own on the venv's PATH)
# storescu's log, one line per event, each with its time (seconds since the epoch, to the millisecond).
_STORESCU_LOG = """log4cplus.rootLogger = INFO, out
log4cplus.appender.out = log4cplus::ConsoleAppender
log4cplus.appender.out.ImmediateFlush = true
log4cplus.appender.out.layout = log4cplus::PatternLayout
log4cplus.appender.out.layout.ConversionPattern = %D{%s.%q} %m%n
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise CommandError(f"timed out waiting for {what}")


def _datasets(*, label: str, count: int, rows: int):
    from pydicom.uid import generate_uid

    from tests.dicom_factory import make_dataset

    study, series = generate_uid(), [generate_uid() for _ in range(4)]
    return [make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series[i % 4], SeriesNumber=i % 4 + 1,
                         InstanceNumber=i + 1, rows=rows, columns=rows, PatientName="Bench^Load", PatientID=label,
                         PatientComments=f"Project:BENCH Subject:{label} Session:{label}_MR")
            for i in range(count)]


def storescu_send(folder: Path, *, port: int, called: str = "XNATLITE", calling: str = "BENCHSCU",
                  timeout: float = 600) -> tuple[list[float], list[str]]:
    """Send every file of ``folder`` over one association with dcmtk's storescu (Nagle off). Returns, per
    file answered Success, the seconds from its request to its response, and what went wrong (a response
    other than Success, files without a response, storescu failing)."""
    config = folder.with_name(f".{folder.name}-log.cfg")
    config.write_text(_STORESCU_LOG)
    files = sum(1 for p in folder.iterdir() if p.is_file())
    try:
        run = subprocess.run([STORESCU, "-lc", str(config), "-aet", calling, "-aec", called, "-nh", "+sd",
                              "127.0.0.1", str(port), str(folder)], env=dict(os.environ, TCP_NODELAY="1"),
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return [], [f"storescu did not end within {timeout:.0f} s"]
    finally:
        config.unlink(missing_ok=True)
    took, errors, sent_at = [], [], None
    for line in (run.stdout + run.stderr).splitlines():
        stamp, _, text = line.partition(" ")
        if text.startswith("Sending Store Request"):
            sent_at = float(stamp)
        elif text.startswith("Received Store Response"):
            if text.startswith("Received Store Response (Success)") and sent_at is not None:
                took.append(float(stamp) - sent_at)
            else:
                errors.append(f"C-STORE {text[len('Received Store Response '):]}")
            sent_at = None
    if run.returncode != 0:
        errors.append(f"storescu exit status {run.returncode}")
    if len(took) + sum(e.startswith("C-STORE") for e in errors) < files:
        errors.append(f"{files - len(took)} of {files} files without a response")
    return took, errors


class Command(BaseCommand):
    help = "Load benchmark: 4 C-STORE associations + 2 zip uploads while a reviewer archives a session."

    def add_arguments(self, parser):
        parser.add_argument("--files", type=int, default=2000, help="Files sent in all (C-STORE + zip).")
        parser.add_argument("--rows", type=int, default=128, help="Image size (rows = columns, 16-bit).")
        parser.add_argument("--archive-files", type=int, default=200, help="Files of the session archived.")
        parser.add_argument("--processes", type=int, default=None,
                            help="run_dicom_scp --processes (default: the receiver's own default).")

    def handle(self, *args, **opts):
        if not settings.DATABASES["default"]["ENGINE"].endswith("postgresql") or \
                not str(settings.CELERY_BROKER_URL).startswith("redis://"):
            raise CommandError("bench_load needs PostgreSQL and Redis (run it under scripts/with-services).")
        work = Path(tempfile.mkdtemp(prefix="bench-load-"))
        procs: list[subprocess.Popen] = []
        try:
            return self._run(work, procs, opts)
        finally:
            for proc in procs:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGTERM)
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        os.killpg(proc.pid, signal.SIGKILL)
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, work: Path, procs: list, opts) -> None:
        from django.contrib.auth import get_user_model
        from django.db import connection

        from prearchive.models import PrearchiveFile, PrearchiveSession
        from prearchive.services.builder import session_build
        from prearchive.services.intake import dicom_file_receive
        from xnatlite.models import ImageSession, Project, ProjectMember, Scan
        from xnatlite.selectors import site_config_get

        roots = {name: work / name.lower() for name in ("PREARCHIVE_ROOT", "ARCHIVE_ROOT", "UPLOAD_TMP_ROOT")}
        for name, path in roots.items():
            path.mkdir()
            setattr(settings, name, path)
        db = connection.settings_dict
        env = dict(os.environ, PYTHONUNBUFFERED="1", **{k: str(v) for k, v in roots.items()},
                   DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}")
        config = site_config_get()
        config.enable_sitewide_anonymization_script = False
        config.enable_dicom_receiver = True
        config.session_xml_rebuilder_interval = 60  # minutes: nothing builds by itself during the run
        config.save()
        project, _ = Project.objects.get_or_create(id="BENCH", defaults={"name": "Bench", "prearchive_code": 0})
        user_model = get_user_model()
        user = user_model.objects.filter(username="bench").first() or user_model.objects.create_user(
            "bench", "bench@example.org")
        # Hashed with a hasher every process has (a test run may configure only a fast one).
        from django.contrib.auth.hashers import PBKDF2PasswordHasher

        user.password = PBKDF2PasswordHasher().encode("bench-pass-1", PBKDF2PasswordHasher().salt(),
                                                      iterations=1000)
        user.save(update_fields=["password"])
        ProjectMember.objects.get_or_create(project=project, user=user, defaults={"role": "owner"})

        # The session the reviewer archives during the load: taken in and built before it starts.
        tag = f"ARC{int(time.time())}"
        for ds in _datasets(label=tag, count=opts["archive_files"], rows=opts["rows"]):
            path = roots["UPLOAD_TMP_ROOT"] / f"{ds.SOPInstanceUID}.dcm"
            ds.save_as(path, enforce_file_format=True)
            assert dicom_file_receive(path=path, source="bench").ok
        review = PrearchiveSession.objects.get(name=f"{tag}_MR", project_id="BENCH")
        S = PrearchiveSession.Status
        session_build(session_id=review.pk, expected=(S.RECEIVING, S.QUEUED_BUILDING))
        review.refresh_from_db()
        if review.status != S.READY:
            raise CommandError(f"the review session is {review.status}: {review.error_message}")

        # The processes.
        scp_port, web_port = _free_port(), _free_port()
        logs = {name: open(work / f"{name}.log", "wb") for name in ("receiver", "web", "worker")}
        start = dict(env=env, cwd=ROOT, start_new_session=True, stderr=subprocess.STDOUT)
        receiver = [sys.executable, "manage.py", "run_dicom_scp", "--port", str(scp_port), "--only"]
        if opts["processes"] is not None:
            receiver += ["--processes", str(opts["processes"])]
        procs.append(subprocess.Popen(receiver, stdout=logs["receiver"], **start))
        procs.append(subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), "xnatlite.wsgi",
                                       "-b", f"127.0.0.1:{web_port}", "-w", "2", "--timeout", "300"],
                                      stdout=logs["web"], **start))
        procs.append(subprocess.Popen([sys.executable, "-m", "celery", "-A", "xnatlite", "worker", "-P", "solo",
                                       "-l", "INFO", "--without-gossip", "--without-mingle",
                                       "--without-heartbeat"], stdout=logs["worker"], **start))

        def ready(name: str, needle: str) -> bool:
            return needle in (work / f"{name}.log").read_text(errors="replace")

        _wait(lambda: ready("receiver", "listening on"), 60, "the receiver")
        _wait(lambda: ready("web", "Booting worker"), 60, "the web server")
        _wait(lambda: ready("worker", "ready."), 60, "the worker")

        # The load: 4 associations and 2 uploads share the files; 1/3 go by zip.
        total = opts["files"]
        per_zip = max(1, -(-total // 6))  # rounded up: at least --files are sent in all
        per_scu = max(1, -(-(total - 2 * per_zip) // 4))
        batches = [_datasets(label=f"SCU{i}{tag}", count=per_scu, rows=opts["rows"]) for i in range(4)]
        folders = []
        for i, batch in enumerate(batches):  # storescu sends files: written before the load starts
            folders.append(work / f"scu{i}")
            folders[-1].mkdir()
            for n, ds in enumerate(batch):
                ds.save_as(folders[-1] / f"i{n:05d}.dcm", enforce_file_format=True)
        zips = []
        for i in range(2):
            buf = io.BytesIO()
            sops = []
            with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
                for n, ds in enumerate(_datasets(label=f"ZIP{i}{tag}", count=per_zip, rows=opts["rows"])):
                    raw = io.BytesIO()
                    ds.save_as(raw, enforce_file_format=True)
                    zf.writestr(f"s{n % 4}/i{n}.dcm", raw.getvalue())
                    sops.append(str(ds.SOPInstanceUID))
            zips.append((f"ZIP{i}{tag}", buf.getvalue(), sops))
        sent = {str(ds.SOPInstanceUID) for batch in batches for ds in batch} | {s for z in zips for s in z[2]}
        auth = "Basic " + b64encode(b"bench:bench-pass-1").decode()
        results: dict[str, list] = {"scu": [], "zip": [], "archive": [], "errors": [], "scu_end": [],
                                    "zip_end": []}
        lock = threading.Lock()

        def store(folder: Path) -> None:
            took, errors = storescu_send(folder, port=scp_port)
            with lock:
                results["scu"].extend(took)
                results["errors"].extend(errors)
                results["scu_end"].append(time.monotonic())

        def upload(label: str, body: bytes) -> None:
            url = (f"http://127.0.0.1:{web_port}/data/services/import?import-handler=DICOM-zip&PROJECT_ID=BENCH"
                   f"&SUBJECT_ID={label}&EXPT_LABEL={label}_MR&format=text")
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/zip", "Authorization": auth})
            t = time.monotonic()
            try:
                with urllib.request.urlopen(request, timeout=600) as response:
                    response.read()
            except Exception as exc:  # noqa: BLE001 - counted below
                with lock:
                    results["errors"].append(f"upload {type(exc).__name__}: {exc}")
            with lock:
                results["zip"].append(time.monotonic() - t)
                results["zip_end"].append(time.monotonic())

        def archive() -> None:
            time.sleep(0.5)  # the load is under way
            body = urllib.parse.urlencode({"src": review.uri, "overwrite": "none", "subject_ID": tag,
                                           "label": f"{tag}_MR", "async": "true"}).encode()
            request = urllib.request.Request(f"http://127.0.0.1:{web_port}/data/services/archive", data=body,
                                             method="POST", headers={"Authorization": auth})
            t = time.monotonic()
            with urllib.request.urlopen(request, timeout=120) as response:
                response.read()
            _wait(lambda: not PrearchiveSession.objects.filter(pk=review.pk).exists(), 600, "the archive")
            with lock:
                results["archive"].append(time.monotonic() - t)

        import urllib.parse  # noqa: F401 - used by archive()

        threads = [threading.Thread(target=store, args=(folder,)) for folder in folders]
        threads += [threading.Thread(target=upload, args=(label, body)) for label, body, _ in zips]
        reviewer = threading.Thread(target=archive)
        began = time.monotonic()
        for t in threads + [reviewer]:
            t.start()
        for t in threads:
            t.join()
        load_seconds = time.monotonic() - began
        reviewer.join()
        connection.close()

        # The count check. The receiver writes its rows together, within a moment of the files (rowbatch).
        deadline = time.monotonic() + 15
        while (PrearchiveFile.objects.filter(sop_instance_uid__in=sent).count() < len(sent)
               and time.monotonic() < deadline):
            time.sleep(0.1)
        rows = list(PrearchiveFile.objects.filter(sop_instance_uid__in=sent).values_list("sop_instance_uid",
                                                                                         flat=True))
        missing, twice = len(sent - set(rows)), len(rows) - len(set(rows))
        on_disk = sum(1 for p in roots["PREARCHIVE_ROOT"].rglob("*.dcm") if not p.name.startswith("."))
        record = ImageSession.objects.filter(project_id="BENCH", label=f"{tag}_MR").first()
        archived_rows = sum(Scan.objects.filter(session=record).values_list("file_count", flat=True)) if record else 0
        archived_disk = (sum(1 for p in (roots["ARCHIVE_ROOT"] / record.archive_path).rglob("*.dcm"))
                         if record else 0)
        ok = (not missing and not twice and on_disk == len(sent) and not results["errors"]
              and archived_rows == archived_disk == opts["archive_files"])
        w = self.stdout.write
        w(f"files sent: {len(sent)} ({4 * per_scu} by C-STORE over 4 associations, {2 * per_zip} in 2 zip uploads)"
          f", {opts['rows']}x{opts['rows']} 16-bit")
        from upload.management.commands.run_dicom_scp import processes_default

        w(f"receiver: run_dicom_scp --processes {opts['processes'] or processes_default()} "
          f"({os.cpu_count()} cores)")
        w(f"load time: {load_seconds:.2f} s -> {len(sent) / load_seconds:.1f} files/s")
        # Each route's share: its files over the time until its last sender ended (all start together).
        rate = len(sent) / load_seconds
        for route, files, name in (("scu", 4 * per_scu, "DICOM receiver (C-STORE, 4 associations)"),
                                   ("zip", 2 * per_zip, "zip uploads (2, /data/services/import)")):
            seconds = max(results[f"{route}_end"]) - began if results[f"{route}_end"] else 0.0
            if seconds > 0:
                w(f"of which {name}: {files} files, {files / load_seconds:.1f} of the {rate:.1f} files/s "
                  f"({100 * files / len(sent):.0f}%); on its own {files / seconds:.1f} files/s (done in {seconds:.2f} s)")
        if results["scu"]:
            w(f"slowest C-STORE: {max(results['scu']) * 1000:.1f} ms (median "
              f"{sorted(results['scu'])[len(results['scu']) // 2] * 1000:.1f} ms)")
        w(f"slowest zip upload: {max(results['zip']):.2f} s")
        if results["archive"]:
            w(f"archive of {opts['archive_files']} files during the load: {results['archive'][0]:.2f} s")
        w(f"count check: {len(set(rows))}/{len(sent)} in the prearchive, {missing} missing, {twice} twice, "
          f"{on_disk} files on disk; archived {archived_disk} files on disk / {archived_rows} recorded; "
          f"{len(results['errors'])} error(s)" + (f": {results['errors'][:3]}" if results["errors"] else ""))
        w("count check: OK" if ok else "count check: FAILED")
        if not ok:
            for name in ("receiver", "web", "worker"):
                self.stderr.write(f"--- {name}.log\n" + (work / f"{name}.log").read_text(errors="replace")[-3000:])
            raise CommandError("count check failed")
