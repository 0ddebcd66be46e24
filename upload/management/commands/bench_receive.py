"""``manage.py bench_receive [--files 1000] [--associations 1] [--chunk 200]``: files/s of a storescu sending one
session to ``run_dicom_scp`` (the real path: intake, site anonymization, database) against the same sender to
a bare pynetdicom SCP that only writes files, in one run. Prints both rates and their ratio (target >= 0.7).

Both receivers run side by side and the session goes to them in alternating chunks (the same files, each
chunk first to one then to the other, the order swapped every round), so that a machine busy with other
work slows both alike; each side's rate is its files over the sum of its chunks' times.

The receiver under test writes into a throwaway prearchive folder; the session rows it creates in the
configured database are deleted at the end.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

STORESCU = "/usr/bin/storescu"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_write(folder: Path, *, files: int, study_uid: str) -> list[Path]:
    """``files`` MR instances of 256x256x16 bits (about 130 KB each), 100 per series, synthetic PHI-free."""
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 4096, size=256 * 256, dtype=np.uint16).tobytes()
    paths, series_uid = [], ""
    for i in range(files):
        if i % 100 == 0:
            series_uid = generate_uid()
        ds = Dataset()
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
        ds.Modality, ds.PatientName, ds.PatientID = "MR", "Bench^Synthetic", "BENCH"
        ds.StudyDate, ds.StudyTime, ds.StudyDescription = "20240101", "120000", "Bench"
        ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = i // 100 + 1, i % 100 + 1, "bench"
        ds.Rows = ds.Columns = 256
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = pixels
        ds.file_meta = FileMetaDataset()
        ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, ds.SOPInstanceUID
        ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
        path = folder / f"s{i // 100 + 1:02d}" / f"i{i:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


class Command(BaseCommand):
    help = "Benchmark run_dicom_scp against a bare pynetdicom storage SCP with the same storescu sender."

    def add_arguments(self, parser):
        parser.add_argument("--files", type=int, default=1000)
        parser.add_argument("--associations", type=int, default=1, help="Concurrent storescu processes.")
        parser.add_argument("--sender", default=STORESCU, help="dcmtk storescu (full path).")
        parser.add_argument("--chunk", type=int, default=200, help="Files per alternating chunk.")

    def handle(self, *args, **options):
        if not os.access(options["sender"], os.X_OK):
            raise CommandError(f"{options['sender']} not found: install dcmtk (apt-get install dcmtk).")
        work = Path(tempfile.mkdtemp(prefix="bench-receive-"))
        study_uid = generate_uid()
        try:
            files = session_write(work / "session", files=options["files"], study_uid=study_uid)
            size = sum(p.stat().st_size for p in files)
            self.stdout.write(f"session: {len(files)} files, {size / len(files) / 1024:.0f} KB each, "
                              f"{options['associations']} association(s), sender {options['sender']}")
            bare, ours = self._interleaved(work, files, options, study_uid)
        finally:
            from prearchive.models import IntakeRejection, PrearchiveSession

            PrearchiveSession.objects.filter(tag=study_uid).delete()
            IntakeRejection.objects.filter(study_instance_uid=study_uid).delete()
            shutil.rmtree(work, ignore_errors=True)
        ratio = ours / bare
        self.stdout.write(f"bare pynetdicom SCP (writes files): {bare:.1f} files/s")
        self.stdout.write(f"run_dicom_scp (intake, prearchive): {ours:.1f} files/s")
        self.stdout.write(f"ratio: {ratio:.2f} (target >= 0.70: {'met' if ratio >= 0.7 else 'NOT met'})")

    # ---------------------------------------------------------------- the two receivers

    def _send(self, files: list[Path], port: int, ae_title: str, options) -> float:
        env = dict(os.environ, TCP_NODELAY="1")
        n = options["associations"]
        chunks = [files[i::n] for i in range(n)]
        start = time.perf_counter()
        procs = [subprocess.Popen([options["sender"], "-aec", ae_title, "-aet", "BENCHSCU", "127.0.0.1", str(port),
                                   *map(str, chunk)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for chunk in chunks]
        errors = [p.communicate(timeout=600)[1] for p in procs]
        elapsed = time.perf_counter() - start
        if any(p.returncode for p in procs):
            raise CommandError("storescu failed: " + b"".join(errors).decode(errors="replace")[-500:])
        return len(files) / elapsed

    def _wait(self, proc: subprocess.Popen, log: Path, needle: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if needle in log.read_text(errors="replace"):
                return
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        raise CommandError(f"receiver did not start:\n{log.read_text(errors='replace')[-2000:]}")

    def _start(self, args, env, log: Path, needle: str) -> subprocess.Popen:
        fh = open(log, "wb")
        proc = subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=settings.BASE_DIR)
        fh.close()
        try:
            self._wait(proc, log, needle)
        except BaseException:
            self._stop(proc)
            raise
        return proc

    def _stop(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _interleaved(self, work: Path, files: list[Path], options, study_uid: str) -> tuple[float, float]:
        from prearchive.models import PrearchiveFile

        out = work / "bare"
        out.mkdir()
        bare_port, port = _free_port(), _free_port()
        env = dict(os.environ, DATABASE_URL=_database_url(), PREARCHIVE_ROOT=str(work / "prearchive"),
                   UPLOAD_TMP_ROOT=str(work / "prearchive" / ".incoming"), PYTHONUNBUFFERED="1")
        env.setdefault("SECRET_KEY", settings.SECRET_KEY)
        procs = []
        try:
            procs.append(self._start([sys.executable, "-m", "upload.bench_scp", str(bare_port), str(out), "BARESCP"],
                                     dict(os.environ), work / "bare.log", "listening"))
            procs.append(self._start([sys.executable, "manage.py", "run_dicom_scp", "--port", str(port),
                                      "--ae-title", "BENCH", "--bind", "127.0.0.1", "--only"],
                                     env, work / "scp.log", "listening on"))
            seconds = {"bare": 0.0, "ours": 0.0}
            chunk = max(1, options["chunk"])
            for n, start in enumerate(range(0, len(files), chunk)):
                part = files[start:start + chunk]
                sides = [("bare", bare_port, "BARESCP"), ("ours", port, "BENCH")]
                for side, side_port, title in (sides if n % 2 == 0 else sides[::-1]):
                    seconds[side] += len(part) / self._send(part, side_port, title, options)
        finally:
            for proc in procs:
                self._stop(proc)
        received = len(list(out.iterdir()))
        if received != len(files):
            raise CommandError(f"bare SCP received {received} of {len(files)} files")
        stored = PrearchiveFile.objects.filter(study_instance_uid=study_uid).count()
        if stored != len(files):
            raise CommandError(f"run_dicom_scp stored {stored} of {len(files)} files")
        return len(files) / seconds["bare"], len(files) / seconds["ours"]
