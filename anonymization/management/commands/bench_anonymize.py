"""manage.py bench_anonymize [--count 500] [--workdir DIR] [--rounds 3]

Builds a corpus of MR files (256x256, 16-bit, PHI and private tags) and compares files/s of
(a) a bare pydicom loop: read, delete 5 tags, set 2, hash one UID, write; and
(b) the DicomEdit engine applying the equivalent script, with the same reads and writes; and
(c) (b) with the residual-PHI check on every output dataset (prearchive/services/residual.py), as the archive
    runs it after its last script pass, against the keyed hashes intake remembered of the corpus (computed
    before timing: that is intake's cost, reported apart as microseconds a file).
Target: (c) >= 0.8 x (b).
"""
from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from django.core.management.base import BaseCommand, CommandParser
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from anonymization.dicomedit import RunContext, parse

BENCH_SCRIPT = """version "6.1"
-(0010,0030)
-(0010,1000)
-(0010,1001)
-(0010,1040)
-(0008,0090)
(0010,0010) := subject
(0010,0020) := session
(0020,000D) := hashUID[(0020,000D)]
"""
VARIABLES = {"project": "BENCH", "subject": "SUBJ01", "session": "SUBJ01_MR1", "modalityLabel": "MR"}
_DELETE = (0x00100030, 0x00101000, 0x00101001, 0x00101040, 0x00080090)


def make_mr_file(path: Path, index: int, study_uid: str, pixels: bytes) -> None:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SOPClassUID = MRImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240115"
    ds.StudyTime = ds.SeriesTime = ds.ContentTime = "101500"
    ds.AccessionNumber = "ACC0001"
    ds.Modality = "MR"
    ds.Manufacturer = "ACME"
    ds.InstitutionName = "General Hospital"
    ds.InstitutionAddress = "1 Hospital Road"
    ds.ReferringPhysicianName = "Ref^Doctor"
    ds.StudyDescription = "Brain"
    ds.SeriesDescription = "T1 MPRAGE"
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "PID0001"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "F"
    ds.OtherPatientIDs = "OTHER1"
    ds.OtherPatientNames = "Roe^Janet"
    ds.PatientAddress = "2 Home Street"
    ds.PatientAge = "054Y"
    ds.SliceThickness = "1.0"
    ds.RepetitionTime = "2300"
    ds.EchoTime = "2.98"
    ds.MagneticFieldStrength = "3"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = index + 1
    ds.ImagePositionPatient = [0.0, 0.0, float(index)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 256
    ds.PixelSpacing = [1.0, 1.0]
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    block = ds.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    block.add_new(0x08, "CS", "IMAGE NUM 4")
    block.add_new(0x0B, "DS", "7620")
    block.add_new(0x0F, "SH", "Fast")
    csa = ds.private_block(0x0029, "SIEMENS CSA HEADER", create=True)
    csa.add_new(0x10, "OB", b"SV10" + bytes(60))
    ds.PixelData = pixels
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    ds.save_as(path, enforce_file_format=True)


def build_corpus(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 4096, size=(256, 256), dtype="<u2").tobytes()
    study_uid = generate_uid()
    paths = []
    for i in range(count):
        path = folder / f"MR{i:05d}.dcm"
        make_mr_file(path, i, study_uid, pixels)
        paths.append(path)
    return paths


def _hash_uid(value: str) -> str:
    d = bytearray(hashlib.sha1(value.encode("utf-8")).digest()[:16])
    d[6] = (d[6] & 0x0F) | 0x50
    d[8] = (d[8] & 0x3F) | 0x80
    return "2.25." + str(int.from_bytes(d, "big"))


def bare_loop(paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    for path in paths:
        ds = dcmread(path)
        for tag in _DELETE:
            if tag in ds:
                del ds[tag]
        ds.PatientName = VARIABLES["subject"]
        ds.PatientID = VARIABLES["session"]
        ds.StudyInstanceUID = _hash_uid(ds.StudyInstanceUID)
        ds.save_as(out / path.name)
    return time.perf_counter() - start


def engine_loop(paths: list[Path], out: Path) -> float:
    start = time.perf_counter()
    script = parse(BENCH_SCRIPT)
    run = RunContext()
    for path in paths:
        ds = dcmread(path)
        script.apply(ds, variables=VARIABLES, run=run)
        ds.save_as(out / path.name)
    return time.perf_counter() - start


def session_fingerprints(paths: list[Path]) -> tuple[dict[str, set[str]], float]:
    """What intake remembers of the corpus (one session), and its cost in seconds."""
    from prearchive.services.residual import fingerprints_of

    prints: dict[str, set[str]] = {}
    elapsed = 0.0
    for path in paths:
        ds = dcmread(path, stop_before_pixels=True)
        start = time.perf_counter()
        for category, digests in fingerprints_of(ds).items():
            prints.setdefault(category, set()).update(digests)
        elapsed += time.perf_counter() - start
    return prints, elapsed


def checked_loop(paths: list[Path], out: Path, prints: dict[str, set[str]]) -> tuple[float, int, float]:
    """(seconds, findings, seconds inside the check)."""
    from prearchive.services.residual import ResidualCheck

    start = time.perf_counter()
    script = parse(BENCH_SCRIPT)
    run = RunContext()
    check = ResidualCheck(prints)
    in_check = 0.0
    for path in paths:
        ds = dcmread(path)
        script.apply(ds, variables=VARIABLES, run=run)
        t = time.perf_counter()
        check.file(ds, "1")
        in_check += time.perf_counter() - t
        ds.save_as(out / path.name)
    return time.perf_counter() - start, len(check.findings), in_check


def run_benchmark(workdir: Path, count: int, rounds: int) -> dict[str, float]:
    paths = build_corpus(workdir / "corpus", count)
    out_a, out_b, out_c = workdir / "out_bare", workdir / "out_engine", workdir / "out_checked"
    for out in (out_a, out_b, out_c):
        out.mkdir(exist_ok=True)
    prints, fingerprint_s = session_fingerprints(paths)
    warm = paths[: min(20, len(paths))]
    bare_loop(warm, out_a)
    engine_loop(warm, out_b)
    checked_loop(warm, out_c, prints)
    best_a = best_b = best_c = float("inf")
    findings, share = 0, 1.0
    for _ in range(rounds):
        best_a = min(best_a, bare_loop(paths, out_a))
        best_b = min(best_b, engine_loop(paths, out_b))
        elapsed, findings, in_check = checked_loop(paths, out_c, prints)
        if elapsed < best_c:
            best_c, share = elapsed, in_check / elapsed
    a = count / best_a
    b = count / best_b
    c = count / best_c
    return {"count": count, "bare": a, "engine": b, "ratio": b / a, "checked": c, "check_ratio": c / b,
            "findings": findings, "fingerprint_us": fingerprint_s / count * 1e6, "check_share": share}


class Command(BaseCommand):
    help = "Benchmark the DicomEdit engine against a bare pydicom de-identification loop."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=500, help="number of MR files (default 500)")
        parser.add_argument("--workdir", default=None, help="folder for the corpus and outputs (kept)")
        parser.add_argument("--rounds", type=int, default=3, help="timed rounds; the best of each is kept")

    def handle(self, *args: object, **options: object) -> None:
        count = int(options["count"])  # type: ignore[arg-type]
        rounds = max(1, int(options["rounds"]))  # type: ignore[arg-type]
        given = options["workdir"]
        workdir = Path(str(given)) if given else Path(tempfile.mkdtemp(prefix="bench_anonymize."))
        workdir.mkdir(parents=True, exist_ok=True)
        try:
            r = run_benchmark(workdir, count, rounds)
        finally:
            if not given:
                shutil.rmtree(workdir, ignore_errors=True)
        self.stdout.write(f"files: {count} MR 256x256 16-bit, best of {rounds} rounds")
        self.stdout.write(f"(a) bare pydicom loop: {r['bare']:.1f} files/s")
        self.stdout.write(f"(b) DicomEdit engine:  {r['engine']:.1f} files/s")
        self.stdout.write(f"ratio b/a: {r['ratio']:.3f}")
        self.stdout.write(f"(c) engine + residual-PHI check: {r['checked']:.1f} files/s "
                          f"({r['findings']} finding(s): what the bench script leaves)")
        self.stdout.write(f"ratio c/b: {r['check_ratio']:.3f} (target >= 0.8); within (c) the check took "
                          f"{r['check_share']:.1%} of the time, i.e. c = {1 - r['check_share']:.3f} x (c without it)")
        self.stdout.write(f"intake's fingerprints: {r['fingerprint_us']:.0f} us a file")
