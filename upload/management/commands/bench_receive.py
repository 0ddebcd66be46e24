"""``manage.py bench_receive [--files 600] [--series 4] [--associations 1,4] [--processes 1,2] [--rounds 3]``:
C-STORE ingest of xnatlite side by side with Orthanc and a bare pynetdicom SCP, in one run.

The receivers (issue 17):
- ``orthanc``: Orthanc from Debian (``apt-get install -y orthanc`` when /usr/sbin/Orthanc is missing), its
  defaults, on free loopback ports from a configuration written into a temporary folder;
- ``xnatlite-pN``: ``run_dicom_scp --processes N`` on the configured database (PostgreSQL) with the site's
  default anonymization script, one per ``--processes`` value;
- ``bare``: a bare pynetdicom storage SCP that only writes each dataset's bytes to a file (upload/bench_scp.py).
The sender is dcmtk's storescu with TCP_NODELAY=1 (Orthanc, built on dcmtk, gets it too): at 1 association one storescu sends the session; at 4, one
storescu per series, at once. Every receiver gets fresh files (its own session: new UIDs, the same pixels),
``--files`` of them (``--series`` series) per association count, sent in ``--rounds`` rounds; in each round
every receiver gets its part in turn, the order rotated round by round, so that a machine busy with other work
slows all alike. A receiver's rate is its files over the sum of its rounds' times (storescu start included,
the same for all); its CPU a file is what its own processes used (the database server's share of xnatlite's
work not included), a figure that a busy machine changes far less than the rate. Then the count check: every file sent is stored once (Orthanc's instance count and its
storage folder; the bare SCP's files; xnatlite's rows, one per instance, and the files in its prearchive).
Exit 1 if a count is off.

The xnatlite receivers write into throwaway prearchive folders; the session rows they create in the
configured database are deleted at the end.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage

STORESCU = "/usr/bin/storescu"
ORTHANC = "/usr/sbin/Orthanc"
UID_LENGTH = 44  # every UID the bench makes: "2.25." and 39 digits, so that the template's bytes can be patched


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _uid(n: int, salt: int) -> str:
    return f"2.25.{10 ** 38 + salt * 10 ** 12 + n}"


_INSTANCE = b"\x20\x00\x13\x00IS\x06\x00"  # (0020,0013) InstanceNumber, 6 characters


def _template(series_number: int) -> bytes:
    """One MR file of 256x256x16 bits (about 130 KB), synthetic, PHI-free, with placeholders that
    ``session_write`` replaces: the UIDs (of the bench's UID length) and a 6-digit instance number."""
    rng = np.random.default_rng(7)
    ds = Dataset()
    sop, series, study = ("1." + c * (UID_LENGTH - 2) for c in "345")
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality, ds.PatientName, ds.PatientID = "MR", "Bench^Synthetic", "BENCH"
    ds.StudyDate, ds.StudyTime, ds.StudyDescription = "20240101", "120000", "Bench"
    ds.SeriesNumber, ds.InstanceNumber, ds.SeriesDescription = series_number, "999999", "bench"
    ds.Rows = ds.Columns = 256
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.integers(0, 4096, size=256 * 256, dtype=np.uint16).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = MRImageStorage, sop
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    from io import BytesIO

    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


_TEMPLATES: dict[int, bytes] = {}


def session_write(folder: Path, *, files: int, series: int = 4, salt: int | None = None,
                  sessions: int = 1) -> list[list[Path]]:
    """One session of ``files`` MR instances in ``series`` series (about 130 KB each), fresh UIDs: the paths
    per series. ``sessions`` = ``series``: each series a study (session) of its own instead. The bytes are a
    template's with its UIDs replaced (no encoding per file)."""
    salt = int.from_bytes(os.urandom(3), "big") if salt is None else salt
    per_series = -(-files // series)
    paths: list[list[Path]] = [[] for _ in range(series)]
    for i in range(files):
        s, n = divmod(i, per_series)
        if s + 1 not in _TEMPLATES:
            _TEMPLATES[s + 1] = _template(s + 1)
        data = (_TEMPLATES[s + 1].replace(_INSTANCE + b"999999", _INSTANCE + b"%06d" % (n + 1))
                .replace(b"1." + b"3" * (UID_LENGTH - 2), _uid(1000 + i, salt).encode())
                .replace(b"1." + b"4" * (UID_LENGTH - 2), _uid(100 + s, salt).encode())
                .replace(b"1." + b"5" * (UID_LENGTH - 2), study_uids(salt, s if sessions > 1 else 0)))
        path = folder / f"s{s + 1:02d}" / f"i{i:05d}.dcm"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[s].append(path)
    return paths


def study_uids(salt: int, index: int) -> bytes:
    return _uid(index, salt).encode()


def _database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    auth = db["USER"] + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
    return f"postgres://{auth}@{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}/{db['NAME']}"


def _wait(check, *, timeout: float, proc: subprocess.Popen, log: Path, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise CommandError(f"{what} did not start:\n{log.read_text(errors='replace')[-2000:]}")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _start(args, *, env, log: Path) -> subprocess.Popen:
    with open(log, "wb") as fh:
        return subprocess.Popen(args, env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=settings.BASE_DIR)


_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """CPU seconds (user + system, with reaped children) of the processes in process group ``pgid``: a
    receiver and the processes it started. Unlike files/s it hardly depends on what else the machine runs."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # after the name: state, ppid, pgrp, ...; utime is the 14th field
            total += sum(int(x) for x in fields[11:15])
    return total / _TICK


def orthanc_ensure() -> str:
    """/usr/sbin/Orthanc, installed from Debian when missing; returns its version line."""
    if not os.access(ORTHANC, os.X_OK):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        install = ["apt-get", "install", "-y", "-q", "orthanc"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            result = subprocess.run(install, env=env, capture_output=True, text=True)
            if result.returncode != 0 or not os.access(ORTHANC, os.X_OK):
                raise CommandError("Orthanc could not be installed (apt-get install -y orthanc): "
                                   + result.stderr[-500:])
    version = subprocess.run([ORTHANC, "--version"], capture_output=True, text=True).stdout.splitlines()
    return version[0].strip() if version else "Orthanc"


@dataclass
class Side:
    """One receiver in the run."""

    name: str
    label: str
    ae_title: str
    work: Path
    port: int = field(default_factory=_free_port)
    proc: subprocess.Popen | None = None
    seconds: dict[int, float] = field(default_factory=dict)   # associations -> time
    cpu: dict[int, float] = field(default_factory=dict)       # associations -> CPU seconds of its processes
    sent: dict[int, list[str]] = field(default_factory=dict)  # associations -> the study UIDs it was sent

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)

    def stored(self, studies: list[str], expected: int) -> str | None:
        """None when ``expected`` instances of ``studies`` are stored once each, else what is wrong."""
        raise NotImplementedError


class Bare(Side):
    def start(self) -> None:
        self.out = self.work / "files"
        self.out.mkdir(parents=True)
        log = self.work / "bare.log"
        self.proc = _start([sys.executable, "-m", "upload.bench_scp", str(self.port), str(self.out), self.ae_title],
                           env=dict(os.environ), log=log)
        _wait(lambda: "listening" in log.read_text(errors="replace"), timeout=60, proc=self.proc, log=log,
              what="the bare SCP")

    def stored(self, studies: list[str], expected: int) -> str | None:
        # the bare SCP names each file by its SOP Instance UID: one file per instance
        prefix = studies[0][:-12]  # _uid: the study's UIDs share all but their last 12 digits
        count = sum(1 for p in self.out.iterdir() if p.name.startswith(prefix))
        return None if count == expected else f"{count} of {expected} files"


class OrthancSide(Side):
    sync: bool = True  # Orthanc's default: fsync of every file written

    def start(self) -> None:
        self.http = _free_port()
        config = {"Name": "bench", "StorageDirectory": str(self.work / "storage"),
                  "IndexDirectory": str(self.work / "index"), "HttpPort": self.http, "DicomPort": self.port,
                  "DicomAet": self.ae_title, "RemoteAccessAllowed": False, "AuthenticationEnabled": False,
                  "Plugins": [], "HttpServerEnabled": True}
        if not self.sync:
            config["SyncStorageArea"] = False
        self.work.mkdir(parents=True, exist_ok=True)
        (self.work / "orthanc.json").write_text(json.dumps(config))
        log = self.work / "orthanc.log"
        # Orthanc's DICOM server is Debian's dcmtk, which leaves Nagle's algorithm on unless TCP_NODELAY is set
        # in its environment (TESTING.md): each response would wait for a delayed ACK (~20 files/s).
        self.proc = _start([ORTHANC, str(self.work / "orthanc.json")], env=dict(os.environ, TCP_NODELAY="1"),
                           log=log)

        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/system", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait(up, timeout=60, proc=self.proc, log=log, what="Orthanc")

    def stored(self, studies: list[str], expected: int) -> str | None:
        found = []
        for study_uid in studies:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.http}/tools/find", method="POST",
                data=json.dumps({"Level": "Instance", "Query": {"StudyInstanceUID": study_uid}}).encode())
            with urllib.request.urlopen(request, timeout=60) as r:
                found += json.loads(r.read())
        if len(found) != expected:
            return f"{len(found)} of {expected} instances"
        return None

    def storage_files(self) -> int:
        return sum(1 for p in (self.work / "storage").rglob("*") if p.is_file() and len(p.name) == 36)


class Xnatlite(Side):
    processes: int = 1

    def start(self) -> None:
        root = self.work / "prearchive"
        self.env = dict(os.environ, DATABASE_URL=_database_url(), PREARCHIVE_ROOT=str(root),
                        UPLOAD_TMP_ROOT=str(root / ".incoming"), PYTHONUNBUFFERED="1")
        self.env.setdefault("SECRET_KEY", settings.SECRET_KEY)
        log = self.work / "scp.log"
        self.work.mkdir(parents=True, exist_ok=True)
        self.proc = _start([sys.executable, "manage.py", "run_dicom_scp", "--port", str(self.port), "--ae-title",
                            self.ae_title, "--bind", "127.0.0.1", "--only", "--processes", str(self.processes)],
                           env=self.env, log=log)
        _wait(lambda: f"listening on 127.0.0.1:{self.port}" in log.read_text(errors="replace"), timeout=90,
              proc=self.proc, log=log, what=self.label)

    def stored(self, studies: list[str], expected: int) -> str | None:
        from prearchive.models import PrearchiveFile, PrearchiveSession

        deadline = time.monotonic() + 10  # (Success waits for the rows' commit: they are there already)
        while True:
            sops = list(PrearchiveFile.objects.filter(session__tag__in=studies).values_list("sop_instance_uid",
                                                                                          flat=True))
            if len(sops) >= expected or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        sessions = list(PrearchiveSession.objects.filter(tag__in=studies))
        on_disk = sum(len(list((self.work / "prearchive" / s.relative_dir).rglob("*.dcm"))) for s in sessions)
        if len(sops) != expected or len(set(sops)) != len(sops) or on_disk != expected:
            return f"{len(set(sops))} instances in {len(sops)} rows, {on_disk} files, of {expected}"
        return None


class Command(BaseCommand):
    help = "C-STORE ingest: run_dicom_scp (1..N processes) against Orthanc and a bare pynetdicom SCP."

    def add_arguments(self, parser):
        parser.add_argument("--files", type=int, default=600, help="Files per receiver and association count.")
        parser.add_argument("--series", type=int, default=4)
        parser.add_argument("--associations", default="1,4",
                            help="Concurrent associations, comma-separated (above 1: one storescu per series).")
        parser.add_argument("--processes", default="1,2", help="run_dicom_scp --processes values to measure.")
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--sessions", type=int, default=1,
                            help="1: one session; the number of series: each series a session (study) of its own.")
        parser.add_argument("--receivers", default="orthanc,xnatlite,bare",
                            help="Which receivers to run (orthanc, xnatlite, bare).")
        parser.add_argument("--sender", default=STORESCU, help="dcmtk storescu (full path).")
        parser.add_argument("--orthanc-no-fsync", action="store_true",
                            help="Orthanc with SyncStorageArea false (not its default; as xnatlite's PREARCHIVE_FSYNC off).")

    def handle(self, *args, **options):
        if not os.access(options["sender"], os.X_OK):
            raise CommandError(f"{options['sender']} not found: install dcmtk (apt-get install dcmtk).")
        levels = [int(x) for x in options["associations"].split(",") if x.strip()]
        wanted = {x.strip() for x in options["receivers"].split(",") if x.strip()}
        if not levels or any(n < 1 for n in levels) or not wanted or wanted - {"orthanc", "xnatlite", "bare"}:
            raise CommandError("--associations: numbers >= 1; --receivers: orthanc, xnatlite, bare")
        if options["sessions"] not in (1, options["series"]):
            raise CommandError("--sessions: 1 or the number of series")
        if any(n > 1 and n != options["series"] for n in levels):
            raise CommandError("above 1 association, one storescu per series: --associations must be --series")
        self.files = options["files"]
        work = Path(tempfile.mkdtemp(prefix="bench-receive-"))
        sides: list[Side] = []
        w = self.stdout.write
        try:
            if "orthanc" in wanted:
                version = orthanc_ensure()
                orthanc = OrthancSide("orthanc", version, "ORTHANC", work / "orthanc")
                orthanc.sync = not options["orthanc_no_fsync"]
                sides.append(orthanc)
            if "xnatlite" in wanted:
                for n in (int(x) for x in options["processes"].split(",") if x.strip()):
                    side = Xnatlite(f"xnatlite-p{n}", f"xnatlite (run_dicom_scp --processes {n})", "XNATLITE",
                                    work / f"xnatlite-p{n}")
                    side.processes = n
                    sides.append(side)
            if "bare" in wanted:
                sides.append(Bare("bare", "bare pynetdicom SCP (writes files)", "BARESCP", work / "bare"))
            w(f"machine: {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
            w(f"session: {options['files']} files of {len(_template(1)) / 1024:.0f} KB, {options['series']} "
              f"series, {options['rounds']} rounds; sender {options['sender']} (TCP_NODELAY=1)"
              + (f"; each series a session of its own ({options['sessions']} sessions)"
                 if options["sessions"] > 1 else ""))
            w(self._durability(sides))
            for side in sides:
                side.start()
            for level in levels:
                self._level(work, sides, level, options)
            problems = []
            for side in sides:
                for level, studies in side.sent.items():
                    wrong = side.stored(studies, options["files"])
                    if wrong:
                        problems.append(f"{side.name} at {level} association(s): {wrong}")
            if isinstance(sides[0], OrthancSide) and not problems:
                files = sides[0].storage_files()
                if files != options["files"] * len(levels):
                    problems.append(f"orthanc: {files} files in its storage folder")
        finally:
            for side in sides:
                side.stop()
            self._cleanup(sides)
            shutil.rmtree(work, ignore_errors=True)
        self._report(sides, levels)
        w(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        if problems:
            raise CommandError("count check failed: " + "; ".join(problems))
        w(f"count check: every file sent is stored once ({', '.join(s.name for s in sides)}): OK")

    def _durability(self, sides: list[Side]) -> str:
        """What each receiver makes durable before its Success (they differ: the figures depend on it)."""
        parts = []
        if any(isinstance(s, OrthancSide) for s in sides):
            if all(s.sync for s in sides if isinstance(s, OrthancSide)):
                parts.append("Orthanc: its defaults (SyncStorageArea: fsync of each file, SQLite index)")
            else:
                parts.append("Orthanc: its defaults but SyncStorageArea false (no fsync of the files; SQLite index)")
        if any(isinstance(s, Xnatlite) for s in sides):
            settings_db = {}
            if connection.vendor == "postgresql":
                with connection.cursor() as cursor:
                    for name in ("fsync", "synchronous_commit"):
                        cursor.execute(f"SHOW {name}")
                        settings_db[name] = cursor.fetchone()[0]
            db = ", ".join(f"{k}={v}" for k, v in settings_db.items()) or connection.vendor
            parts.append(f"xnatlite: {connection.vendor} ({db}), PREARCHIVE_FSYNC="
                         f"{'on' if getattr(settings, 'PREARCHIVE_FSYNC', False) else 'off'}")
        if any(isinstance(s, Bare) for s in sides):
            parts.append("bare: no fsync")
        return "durability: " + "; ".join(parts)

    def _level(self, work: Path, sides: list[Side], level: int, options) -> None:
        """``level`` associations: each side gets its own fresh session, sent in rounds, sides in turn."""
        sessions = {}
        for side in sides:
            salt = int.from_bytes(os.urandom(3), "big")
            split = options["sessions"] > 1
            sessions[side.name] = session_write(work / f"files-{side.name}-{level}", files=options["files"],
                                                series=options["series"], salt=salt, sessions=options["sessions"])
            side.sent[level] = [_uid(s if split else 0, salt) for s in range(options["series"] if split else 1)]
            side.seconds[level] = side.cpu[level] = 0.0
        rounds = max(1, options["rounds"])
        for r in range(rounds):
            order = sides[r % len(sides):] + sides[:r % len(sides)]
            for side in order:
                series = sessions[side.name]
                part = [s[len(s) * r // rounds:len(s) * (r + 1) // rounds] for s in series]
                chunks = part if level > 1 else [[p for s in part for p in s]]
                side.seconds[level] += self._send(chunks, side, level, options)
        for side in sides:
            shutil.rmtree(work / f"files-{side.name}-{level}", ignore_errors=True)

    def _send(self, chunks: list[list[Path]], side: Side, level: int, options) -> float:
        env = dict(os.environ, TCP_NODELAY="1")
        cpu = group_cpu_seconds(side.proc.pid)
        start = time.perf_counter()
        procs = [subprocess.Popen([options["sender"], "-aec", side.ae_title, "-aet", "BENCHSCU", "127.0.0.1",
                                   str(side.port), *map(str, chunk)], env=env, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE) for chunk in chunks if chunk]
        errors = [p.communicate(timeout=900)[1] for p in procs]
        elapsed = time.perf_counter() - start
        side.cpu[level] += group_cpu_seconds(side.proc.pid) - cpu
        if any(p.returncode for p in procs):
            raise CommandError(f"storescu to {side.name} failed: "
                               + b"".join(errors).decode(errors="replace")[-500:])
        return elapsed

    def _report(self, sides: list[Side], levels: list[int]) -> None:
        w = self.stdout.write
        for level in levels:
            w(f"{level} association(s):")
            rates = {side.name: self.files / side.seconds[level] if side.seconds.get(level) else 0.0
                     for side in sides}
            for side in sides:
                w(f"  {side.label}: {rates[side.name]:.1f} files/s, "
                  f"{1000 * side.cpu[level] / self.files:.2f} ms CPU a file")
            for side in sides:
                if side.name.startswith("xnatlite"):
                    parts = [f"{rates[side.name] / rates[o.name]:.2f}x {o.name}" for o in sides
                             if o is not side and rates.get(o.name)]
                    w(f"  ratio {side.name}: " + ", ".join(parts))

    def _cleanup(self, sides: list[Side]) -> None:
        from prearchive.models import IntakeRejection, PrearchiveSession

        studies = [study for side in sides if isinstance(side, Xnatlite) for sent in side.sent.values()
                   for study in sent]
        if studies:
            PrearchiveSession.objects.filter(tag__in=studies).delete()
            IntakeRejection.objects.filter(study_instance_uid__in=studies).delete()
