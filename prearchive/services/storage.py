"""Paths in the prearchive tree (reference/xnat.md §3) and atomic file writes.

{PREARCHIVE_ROOT}/{PROJECT}/{timestamp}/{folder}/SCANS/{scanId}/DICOM/{file}.dcm
{PREARCHIVE_ROOT}/{PROJECT}/{timestamp}/{folder}.xml        (session document; .json beside it)
Unassigned sessions: {PREARCHIVE_ROOT}/{timestamp}/{folder}/...
Temporary files start with '.' and end with '.tmp'; nothing reads them but the writer and the reaper.
"""
from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.utils import timezone


def root() -> Path:
    return Path(str(settings.PREARCHIVE_ROOT))


def session_dir(relative_dir: str) -> Path:
    return root() / relative_dir


def scan_file_relative(scan_id: str, file_name: str) -> str:
    return f"SCANS/{scan_id}/DICOM/{file_name}"


def timestamp_now() -> str:
    """yyyyMMdd_HHmmssSSS in the server's time zone, as XNAT names its prearchive folders."""
    now = timezone.localtime(timezone.now())
    return now.strftime("%Y%m%d_%H%M%S") + f"{now.microsecond // 1000:03d}"


# The session document beside its folder: {folder}.xml and {folder}.json.
DOCUMENT_SUFFIXES = (".xml", ".json")


def session_folder_remove(base: Path) -> None:
    """A session folder and its documents, gone (whatever of them is there)."""
    shutil.rmtree(base, ignore_errors=True)
    for suffix in DOCUMENT_SUFFIXES:
        try:
            os.unlink(base.with_name(base.name + suffix))
        except FileNotFoundError:
            pass


def temp_name(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def _fsync_wanted() -> bool:
    return bool(getattr(settings, "PREARCHIVE_FSYNC", False))


_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def bytes_write_atomic(dest: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``data`` to ``dest``: a temporary name in the same folder, then os.replace. The folder is made
    only when the first write finds it missing (intake writes many files a second into folders that exist).
    ``replace=False``: FileExistsError if ``dest`` is there (a hard link in place of the rename, then the
    temporary name removed): a file of that name written meanwhile by another thread or process is never
    overwritten."""
    tmp = temp_name(dest)
    try:
        try:
            fd = os.open(tmp, _NEW_FILE, 0o644)
        except FileNotFoundError:
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, _NEW_FILE, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if _fsync_wanted():
                os.fsync(fd)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, dest)
        else:
            os.link(tmp, dest)
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def file_move_atomic(src: Path, dest: Path) -> None:
    """Move the caller's temporary file into place: a rename when on the same file system, else a copy to
    a temporary name beside ``dest`` and a rename. ``src`` is gone afterwards either way."""
    try:
        try:
            os.replace(src, dest)
        except FileNotFoundError:
            if not os.path.exists(src):
                raise
            dest.parent.mkdir(parents=True, exist_ok=True)  # first file of the scan folder
            os.replace(src, dest)
        return
    except OSError as exc:
        if exc.errno != 18:  # EXDEV: another file system
            raise
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(dest)
    try:
        shutil.copyfile(src, tmp)
        if _fsync_wanted():
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    src.unlink(missing_ok=True)


def tree_remove_empty(path: Path, *, stop: Path) -> None:
    """Remove empty folders from ``path`` up to (not including) ``stop``."""
    path = Path(path)
    while path != stop and stop in path.parents:
        try:
            path.rmdir()
        except OSError:
            return
        path = path.parent
