"""The file work of archiving: build the session's new archive folder beside the old one, then swap it in.

Layout: ``ARCHIVE_ROOT/{project}/arc001/{label}/SCANS/{scan}/DICOM/{file}``. A job builds
``arc001/.{label}.partial-{pk}`` (pk of the prearchive session) and renames it into place; when a session
with that label already exists (append, delete) the old folder is first renamed to ``.{label}.old-{pk}`` and
removed once the database records the new state. Every file is written to a temporary name and renamed, so a
file that exists is complete: a job killed midway resumes where it stopped. The marker ``.xnatlite-op`` in
the new folder names the operation and the prearchive files it archived, so a retried job can tell which
step it reached.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from django.conf import settings
from pydicom import dcmread

from prearchive.services.jobfile import fsync_dir

MARKER = ".xnatlite-op"
ARC = "arc001"


@dataclass(frozen=True)
class ArchiveDirs:
    final: Path
    partial: Path
    old: Path

    @property
    def relative(self) -> str:
        return str(self.final.relative_to(Path(settings.ARCHIVE_ROOT)))


def archive_dirs(*, project_id: str, label: str, job_id: int) -> ArchiveDirs:
    base = Path(settings.ARCHIVE_ROOT) / project_id / ARC
    return ArchiveDirs(final=base / label, partial=base / f".{label}.partial-{job_id}",
                       old=base / f".{label}.old-{job_id}")


def marker_read(folder: Path) -> dict | None:
    try:
        with open(folder / MARKER, encoding="utf-8") as fh:
            data = json.load(fh)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def marker_write(folder: Path, data: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f"{MARKER}.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, folder / MARKER)


def marker_remove(folder: Path) -> None:
    try:
        os.unlink(folder / MARKER)
    except FileNotFoundError:
        pass


@dataclass(frozen=True)
class FileJob:
    """One prearchive file to archive: where it is and where it goes (relative to the session folder)."""

    source: Path
    dest: str  # SCANS/{scan}/DICOM/{name}


def _write_atomic(ds, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp")
    with open(tmp, "wb") as fh:
        ds.save_as(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, dest)


def tree_write(*, dirs: ArchiveDirs, files: Iterable[FileJob], transform: Callable, merge_existing: bool,
               should_stop: Callable[[], bool], every: int = 25) -> tuple[int, int]:
    """Write every file (``transform(ds) -> keep?``) into the partial folder, skipping those already there.
    With ``merge_existing``, then hard-link the existing session's files that were not replaced.
    Returns (written, rejected). Stops early (returning what it did) when ``should_stop()``."""
    written = rejected = 0
    for n, job in enumerate(files):
        if n % every == 0 and should_stop():
            raise JobInterrupted()
        dest = dirs.partial / job.dest
        if dest.exists():
            written += 1
            continue
        ds = dcmread(job.source)
        if not transform(ds):
            rejected += 1
            continue
        _write_atomic(ds, dest)
        written += 1
    if merge_existing and dirs.final.is_dir():
        _link_existing(dirs.final, dirs.partial)
    for folder, _subdirs, _names in os.walk(dirs.partial):
        fsync_dir(Path(folder))
    return written, rejected


def _link_existing(src_root: Path, dst_root: Path) -> None:
    for folder, _subdirs, names in os.walk(src_root):
        rel = Path(folder).relative_to(src_root)
        for name in names:
            if name == MARKER or name.endswith(".tmp"):
                continue
            dst = dst_root / rel / name
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{name}.tmp")
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            try:
                os.link(Path(folder) / name, tmp)
            except OSError:
                shutil.copy2(Path(folder) / name, tmp)
            os.replace(tmp, dst)


class JobInterrupted(Exception):
    """New files arrived for the session (RECEIVING_INTERRUPT): the job stops and leaves everything."""


def tree_swap(dirs: ArchiveDirs) -> None:
    """Put the partial folder in place of the final one (resumable at each step)."""
    if dirs.final.exists() and not dirs.partial.exists():
        return  # already swapped
    if dirs.final.exists():
        if dirs.old.exists():
            shutil.rmtree(dirs.old)
        os.rename(dirs.final, dirs.old)
    os.rename(dirs.partial, dirs.final)
    fsync_dir(dirs.final.parent)


def tree_discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def scan_stats(folder: Path) -> dict[str, tuple[int, int]]:
    """{scan_id: (file count, bytes)} of an archived session folder."""
    stats: dict[str, tuple[int, int]] = {}
    scans = folder / "SCANS"
    if not scans.is_dir():
        return stats
    from xnatlite.archive.data import is_data_file

    for scan in sorted(scans.iterdir()):
        count = size = 0
        for f in (scan / "DICOM").glob("*"):
            if f.is_file() and is_data_file(f.name):  # not the scan's catalog
                count += 1
                size += f.stat().st_size
        stats[scan.name] = (count, size)
    return stats


def count_files(folder: Path) -> int:
    from xnatlite.archive.data import is_data_file

    n = 0
    for _folder, _subdirs, names in os.walk(folder):
        n += sum(1 for name in names if is_data_file(name))
    return n
