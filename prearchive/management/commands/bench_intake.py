"""manage.py bench_intake: intake throughput against a bare loop, and the memory of a 10,000-instance build.

1. Writes a corpus of synthetic DICOM files (default 1,000: 10 studies x 5 series x 20 instances), 256x256
   16-bit MR images (~130 KB a file, the realistic size bench_receive and bench_anonymize use; ``--size 64``
   gives the earlier 9 KB toy files, where a file copy costs next to nothing).
2. Bare loop: for each file, read the header (pydicom, stop_before_pixels) and copy the file.
3. Intake: ``dicom_files_receive`` (as the archive and folder routes call it: rows written together, one
   statement per session for up to 100 files) on a fresh temporary copy of each file (copies made before
   timing, as a route would have written them), with ``prevent_anon`` so both sides do the same work; with
   ``--with-anon`` also through the site-wide script, against a bare read/apply/write loop. A row for every
   file is checked after each timed part.
4. With ``--receiver-threads 1,4``: the DICOM receiver's intake without the network. Each thread is one
   association: it hands its files' bytes to ``dicom_file_receive(data=..., row_writer=rowbatch.writer_get())``
   one after another, exactly as the C-STORE handler does (its Success would come only once the call returned,
   that is once the file's row is committed), with the site's own settings (its anonymization script
   included). One session of ``--receiver-files`` fresh 130 KB MR files in 4 series (bench_receive's files)
   per round; with 4 threads each sends one series. Thread counts alternate over ``--rounds`` rounds; files/s
   and the process's CPU time per file (every thread, the row writer's included; PostgreSQL's not) are
   printed per thread count, and every file is checked to be stored once with its row. ``--profile FILE``
   writes a cProfile of the receiver rounds (every thread) to FILE. ``--receiver-only`` skips 1-3 and 5.
   ``--lone-path both`` alternates each thread count's rounds with the row writer's lone-association path
   (rowbatch ``RowWriter.alone``) off and on, to compare them in one run (``off``: the writer only).
5. Build: a synthetic session of N instance rows (default 10,000) built by the session builder; prints
   tracemalloc's peak for the build and the process's peak RSS.
Everything is made in a temporary prearchive root and removed afterwards, database rows included.
"""
from __future__ import annotations

import resource
import shutil
import tempfile
import time
import tracemalloc
from pathlib import Path
from unittest import mock

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone


def _dataset(*, size: int, study: str, series: str, series_number: int, instance: int, comments: str):
    """A small synthetic MR instance with the usual patient and study header."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    ds = Dataset()
    ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
    ds.Modality, ds.PatientName, ds.PatientID, ds.PatientBirthDate = "MR", "Bench^Patient", "BENCH01", "19700101"
    ds.PatientComments = comments
    ds.StudyDate, ds.StudyTime, ds.SeriesDate, ds.SeriesTime = "20240115", "101500", "20240115", "102000"
    ds.StudyDescription, ds.SeriesDescription = "Bench", f"Series {series_number}"
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance
    ds.Manufacturer, ds.ManufacturerModelName, ds.StationName = "ACME", "Imager 3T", "MR1"
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = (np.arange(size * size, dtype=np.uint16) % 4096).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPClassUID, ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


class Command(BaseCommand):
    help = "Benchmark intake (files/s vs a bare header-read + copy loop) and the memory of building a big session."

    def add_arguments(self, parser):
        parser.add_argument("--files", type=int, default=1000)
        parser.add_argument("--instances", type=int, default=10_000, help="instances in the build benchmark")
        parser.add_argument("--size", type=int, default=256, help="rows and columns of each image")
        parser.add_argument("--with-anon", action="store_true", help="also time intake through the site script")
        parser.add_argument("--receiver-threads", default="",
                            help="comma-separated association counts for the receiver's intake, e.g. 1,4")
        parser.add_argument("--receiver-files", type=int, default=600, help="files a round of the receiver part")
        parser.add_argument("--rounds", type=int, default=3, help="rounds of each receiver thread count")
        parser.add_argument("--receiver-only", action="store_true", help="only the receiver part")
        parser.add_argument("--profile", default="", help="cProfile of the receiver rounds into this file")
        parser.add_argument("--lone-path", default="on", choices=["on", "off", "both"],
                            help="the row writer's lone-association path (both: alternating rounds, off first)")

    def handle(self, *args, **opts):
        work = Path(tempfile.mkdtemp(prefix="bench-intake-"))
        old_root, old_tmp = settings.PREARCHIVE_ROOT, settings.UPLOAD_TMP_ROOT
        settings.PREARCHIVE_ROOT, settings.UPLOAD_TMP_ROOT = work / "prearchive", work / "prearchive" / ".incoming"
        Path(settings.UPLOAD_TMP_ROOT).mkdir(parents=True)
        created: list[int] = []
        try:
            threads = [int(t) for t in opts["receiver_threads"].split(",") if t.strip()]
            if threads:
                self._receiver(work, threads, files=opts["receiver_files"], rounds=opts["rounds"],
                               profile=opts["profile"], lone=opts["lone_path"])
            if opts["receiver_only"]:
                return
            corpus = self._corpus(work / "corpus", opts["files"], opts["size"])
            # Interleaved in chunks, so that a busy machine slows both sides alike.
            bare_s = intake_s = bare_cpu = intake_cpu = 0.0
            for start in range(0, len(corpus), 100):
                chunk = corpus[start:start + 100]
                cpu = time.process_time()
                bare_s += len(chunk) / self._bare(chunk, work / f"bare{start}")
                bare_cpu += time.process_time() - cpu
                rate_chunk, ids = self._intake(chunk, work, prevent_anon=True, clear_hints=start == 0)
                intake_cpu += self._cpu
                intake_s += len(chunk) / rate_chunk
                created += ids
            bare, rate = len(corpus) / bare_s, len(corpus) / intake_s
            n = len(corpus)
            self.stdout.write(f"corpus: {len(corpus)} files, {sum(p.stat().st_size for p in corpus) // 1024} KiB")
            self.stdout.write(f"bare loop (header read + copy): {bare:.0f} files/s "
                              f"(CPU {1000 * bare_cpu / n:.3f} ms a file)")
            self.stdout.write(f"intake (header read, route, filters, place, rows): {rate:.0f} files/s "
                              f"(CPU {1000 * intake_cpu / n:.3f} ms a file)")
            self.stdout.write(f"intake / bare ratio: {rate / bare:.2f} (target >= 0.70)")
            if opts["with_anon"]:
                bare_anon = self._bare_anon(corpus, work / "bare-anon")
                self._cleanup(created)
                created = []
                rate_anon, ids = self._intake(corpus, work, prevent_anon=False)
                created += ids
                self.stdout.write(f"bare loop (full read + default script + write): {bare_anon:.0f} files/s")
                self.stdout.write(f"intake with the site-wide script: {rate_anon:.0f} files/s "
                                  f"(ratio {rate_anon / bare_anon:.2f})")
            self._cleanup(created)
            created = []
            peak, seconds = self._build(opts["instances"], created)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            self.stdout.write(f"build of a {opts['instances']}-instance session: {seconds:.2f} s, "
                              f"peak traced memory {peak / 2**20:.1f} MiB (target < 300 MiB)")
            self.stdout.write(f"process peak RSS: {rss:.0f} MiB")
        finally:
            self._cleanup(created)
            settings.PREARCHIVE_ROOT, settings.UPLOAD_TMP_ROOT = old_root, old_tmp
            shutil.rmtree(work, ignore_errors=True)

    def _corpus(self, folder: Path, count: int, size: int) -> list[Path]:
        from pydicom.uid import generate_uid

        paths = []
        per_series, series_per_study = 20, 5
        study = series = None
        for i in range(count):
            if i % (per_series * series_per_study) == 0:
                study = generate_uid()
            if i % per_series == 0:
                series = generate_uid()
            ds = _dataset(size=size, study=study, series=series,
                          series_number=(i // per_series) % series_per_study + 1, instance=i % per_series + 1,
                          comments=f"Subject:S{i // 100:03d} Session:S{i // 100:03d}_MR1")
            path = folder / f"{i:06d}.dcm"
            path.parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(path, enforce_file_format=True)
            paths.append(path)
        return paths

    def _bare(self, corpus: list[Path], out: Path) -> float:
        import pydicom

        out.mkdir()
        start = time.perf_counter()
        for path in corpus:
            pydicom.dcmread(path, stop_before_pixels=True)
            shutil.copyfile(path, out / path.name)
        return len(corpus) / (time.perf_counter() - start)

    def _bare_anon(self, corpus: list[Path], out: Path) -> float:
        import pydicom

        from anonymization.services import script_compile
        from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT

        script = script_compile(text=DEFAULT_SITE_ANON_SCRIPT)
        out.mkdir()
        start = time.perf_counter()
        for path in corpus:
            ds = pydicom.dcmread(path)
            script.apply(ds, variables={"project": "P", "subject": "S", "session": "E"})
            ds.save_as(out / path.name, enforce_file_format=True)
        return len(corpus) / (time.perf_counter() - start)

    def _intake(self, corpus: list[Path], work: Path, *, prevent_anon: bool,
                clear_hints: bool = True) -> tuple[float, list[int]]:
        from prearchive.models import PrearchiveFile
        from prearchive.services import intake

        incoming = Path(settings.UPLOAD_TMP_ROOT)
        staged = []
        for path in corpus:
            tmp = incoming / f"{path.name}.part"
            shutil.copyfile(path, tmp)
            staged.append(tmp)
        if clear_hints:
            intake._SESSION_HINTS.clear()
        ids: set[int] = set()
        rows_before = PrearchiveFile.objects.count()
        # The per-session countdown needs a broker; the benchmark measures intake alone.
        with mock.patch.object(intake, "idle_countdown_on_commit", lambda session_id: None):
            cpu, start = time.process_time(), time.perf_counter()
            for result in intake.dicom_files_receive(staged, source="bench", prevent_anon=prevent_anon):
                if not result.ok:
                    raise SystemExit(f"intake refused a benchmark file: {result.reason}")
                ids.add(result.session_id)
            elapsed = time.perf_counter() - start
            self._cpu = time.process_time() - cpu
        if PrearchiveFile.objects.count() - rows_before != len(staged):
            raise SystemExit("intake did not write a row for every file it stored")
        return len(staged) / elapsed, sorted(ids)

    def _receiver(self, work: Path, threads: list[int], *, files: int, rounds: int, profile: str,
                  lone: str = "on") -> None:
        """Part 4 of the module docstring."""
        import os
        import threading

        from django.db import connection

        from prearchive.models import PrearchiveFile, PrearchiveSession
        from prearchive.services import intake, rowbatch
        from upload.management.commands.bench_receive import session_write

        ways = {"on": [True], "off": [False], "both": [False, True]}[lone]
        levels = [(n, way) for n in threads for way in ways]
        seconds = {n: 0.0 for n in levels}
        cpu = {n: 0.0 for n in levels}
        profiles: list = []
        self.stdout.write(f"receiver part: {files} files a round, {rounds} rounds, threads {threads}, lone path {lone}, "
                          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        with mock.patch.object(intake, "idle_countdown_on_commit", lambda session_id: None):
            for r in range(rounds):
                for level in levels:
                    n, way = level
                    series = session_write(work / f"receiver{r}-{n}", files=files, series=4)
                    data = [[p.read_bytes() for p in paths] for paths in series]
                    shutil.rmtree(work / f"receiver{r}-{n}")
                    writer = rowbatch.writer_get()
                    if writer is not None:
                        writer.lone_path = way
                    flat = sum(data, [])
                    shares = data if n == len(data) else [flat[k::n] for k in range(n)]
                    failures: list[str] = []
                    ids: set[int] = set()

                    def association(share: list[bytes]) -> None:
                        mine = None
                        if profile:  # cProfile sees one thread: one profiler each, merged below
                            import cProfile

                            mine = cProfile.Profile()
                            mine.enable()
                        try:
                            for blob in share:
                                result = intake.dicom_file_receive(data=blob, source="dicom", calling_aet="BENCH",
                                                                   called_aet="XNATLITE",
                                                                   row_writer=rowbatch.writer_get())
                                if not result.ok:
                                    failures.append(result.reason)
                                ids.add(result.session_id)
                        except Exception as exc:  # noqa: BLE001 - said below
                            failures.append(type(exc).__name__)
                        finally:
                            connection.close()
                            if mine is not None:
                                mine.disable()
                                profiles.append(mine)

                    workers = [threading.Thread(target=association, args=(share,)) for share in shares]
                    before, start = time.process_time(), time.perf_counter()
                    for t in workers:
                        t.start()
                    for t in workers:
                        t.join()
                    seconds[level] += time.perf_counter() - start
                    cpu[level] += time.process_time() - before
                    if failures:
                        raise SystemExit(f"the receiver's intake refused files: {failures[:3]}")
                    rows = PrearchiveFile.objects.filter(session_id__in=ids).count()
                    stored = sum(1 for _ in Path(settings.PREARCHIVE_ROOT).rglob("*.dcm"))
                    PrearchiveSession.objects.filter(pk__in=ids).delete()
                    shutil.rmtree(settings.PREARCHIVE_ROOT, ignore_errors=True)
                    Path(settings.UPLOAD_TMP_ROOT).mkdir(parents=True)
                    if len(ids) != 1 or rows != files or stored != files:
                        raise SystemExit(f"receiver part: {len(ids)} sessions, {rows} rows, {stored} files "
                                         f"for {files} files sent")
        rowbatch.writer_stop()
        for level in levels:
            n, way = level
            total = files * rounds
            self.stdout.write(f"receiver intake, {n} association{'s' if n > 1 else ''}"
                              f"{'' if lone != 'both' else ', lone path ' + ('on' if way else 'off')}: "
                              f"{total / seconds[level]:.1f} files/s (CPU {1000 * cpu[level] / total:.3f} ms a file)")
        self.stdout.write(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
                          "every file stored once with its row")
        if profiles:
            import pstats

            stats = pstats.Stats(profiles[0])
            for more in profiles[1:]:
                stats.add(more)
            stats.dump_stats(profile)

    def _build(self, instances: int, created: list[int]) -> tuple[int, float]:
        from pydicom.uid import generate_uid

        from prearchive.models import PrearchiveFile, PrearchiveSession
        from prearchive.services.builder import session_build

        now = timezone.now()
        study = generate_uid()
        session = PrearchiveSession.objects.create(
            tag=study, name="bench_build", folder_name=f"bench_{study[-20:]}", timestamp="20000101_000000000",
            lastmod=now, uploaded=now, status=PrearchiveSession.Status.QUEUED_BUILDING, source="bench")
        created.append(session.pk)
        series_uids = [generate_uid() for _ in range(20)]
        rows = []
        for i in range(instances):
            s = i % 20
            rows.append(PrearchiveFile(
                session=session, sop_instance_uid=generate_uid(), sop_class_uid="1.2.840.10008.5.1.4.1.1.4",
                study_instance_uid=study, series_instance_uid=series_uids[s], series_number=str(s + 1),
                scan_id=str(s + 1), relative_path=f"SCANS/{s + 1}/DICOM/{i}.dcm", size=9000, instance_number=i,
                modality="MR", series_description="T1", series_date="20240101", series_time="101010",
                study_date="20240101", study_time="101010", station_name="MR1", received=now))
            if len(rows) == 2000:
                PrearchiveFile.objects.bulk_create(rows)
                rows = []
        PrearchiveFile.objects.bulk_create(rows)
        del rows
        tracemalloc.start()
        start = time.perf_counter()
        status = session_build(session_id=session.pk)
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        if status != PrearchiveSession.Status.READY:
            raise SystemExit(f"the benchmark session was not built: {status}")
        return peak, seconds

    def _cleanup(self, ids: list[int]) -> None:
        from prearchive.models import PrearchiveSession

        if ids:
            PrearchiveSession.objects.filter(pk__in=ids).delete()
