"""The DICOM inbox: import a folder (or file) on the server, under the admin-configured inbox root only.

The requested path is resolved with every symbolic link followed and must still lie inside the (resolved)
root; a path outside is refused with 403. From then on nothing is looked up by path again: the root is
opened once (``O_DIRECTORY | O_NOFOLLOW``) and every folder below it, every file read and every file removed
is reached through the descriptor of its parent folder (``dir_fd=``, ``os.scandir`` on the descriptor),
never following a symbolic link at any level. Each folder's device and inode are recorded when it is
opened; before a file is read and again before an original is removed (``cleanupAfterImport=true``), the
chain of folders from the root is checked to be still in place (each one still the entry of its parent,
same device and inode), and the file to remove still the one that was read. So a folder renamed away and
replaced by a link while an import runs stops the import of what it holds: nothing outside the root is
read, and nothing outside is removed. Links, devices, sockets and unreadable files inside the root are
skipped and reported; each file is copied to a temporary file that intake takes over.
"""
from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from django.conf import settings

from xnatlite.selectors import site_config_get

from .services import MSG_INTAKE_FAILED, ImportRefused, ImportReport, Progress, import_commit, _truthy

logger = logging.getLogger(__name__)

MSG_INBOX_OFF = "The DICOM inbox is not configured on this site (an administrator sets its root folder)."
MSG_OUTSIDE = "The path {path} is outside the DICOM inbox root; refused."
MSG_MISSING = "The path {path} does not exist in the DICOM inbox."
MSG_NO_PATH = "Give the server-side folder to import with the path parameter."
MSG_CHANGED = "The path {path} changed while it was being opened (a folder was moved or replaced); refused."
SKIP_LINK = "symbolic link (not followed)"
SKIP_NOT_FILE = "not a regular file"
SKIP_UNREADABLE = "could not be read (or was replaced by a link)"
SKIP_MOVED = "its folder was moved or replaced during the import; not read"
KEPT_MOVED = "stored, but its folder was moved or replaced during the import; the original was not removed"
KEPT_CHANGED = "stored, but the file was replaced during the import; the original was not removed"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def inbox_resolve(*, path: str) -> tuple[Path, Path]:
    """(root, target): both resolved; raises ImportRefused when the inbox is off or ``path`` (absolute, or
    relative to the root) resolves outside the root."""
    root_setting = site_config_get().inbox_path.strip()
    if not root_setting:
        raise ImportRefused(MSG_INBOX_OFF, status=400)
    if not path:
        raise ImportRefused(MSG_NO_PATH, status=400)
    root = Path(os.path.realpath(root_setting))
    target = Path(os.path.realpath(os.path.join(root, path)))
    if os.path.commonpath([root, target]) != str(root):
        raise ImportRefused(MSG_OUTSIDE.format(path=path), status=403)
    if not target.exists():
        raise ImportRefused(MSG_MISSING.format(path=path), status=404)
    return root, target


def _entry_is(dir_fd: int, name: str, ident: tuple[int, int], kind) -> bool | None:
    """Whether ``name`` in the folder ``dir_fd`` (not followed if a link) is of ``kind`` with this device and
    inode; None when there is no such entry any more."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError:
        return False
    return bool(kind(st.st_mode)) and (st.st_dev, st.st_ino) == ident


class _Dir:
    """An open folder of the walk: its descriptor, its name in its parent and the identity it had when it
    was opened. Reference-counted: open while it is walked, while a file of it waits for its result, and
    while a subfolder is open (the chain to the root stays checkable)."""

    def __init__(self, fd: int, name: str, parent: _Dir | None, rel: str):
        st = os.fstat(fd)
        self.fd, self.name, self.parent, self.rel = fd, name, parent, rel
        self.ident = (st.st_dev, st.st_ino)
        self.refs = 1
        if parent is not None:
            parent.refs += 1

    def child(self, name: str) -> _Dir:
        fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        try:
            return _Dir(fd, name, self, f"{self.rel}/{name}" if self.rel else name)
        except BaseException:
            os.close(fd)
            raise

    def in_place(self) -> bool:
        """Whether this folder and every folder above it is still the entry of its parent it was."""
        node = self
        while node.parent is not None:
            if _entry_is(node.parent.fd, node.name, node.ident, stat.S_ISDIR) is not True:
                return False
            node = node.parent
        return True

    def release(self) -> None:
        node = self
        while node is not None:
            node.refs -= 1
            if node.refs:
                return
            os.close(node.fd)
            node = node.parent


@dataclass
class _Source:
    folder: _Dir
    name: str
    ident: tuple[int, int]

    @property
    def rel(self) -> str:
        return f"{self.folder.rel}/{self.name}" if self.folder.rel else self.name


def _open_target(root_fd: int, parts: tuple[str, ...], path: str) -> tuple[_Dir, str | None]:
    """(folder, file name or None) for the resolved target, each component opened without following links."""
    root = _Dir(root_fd, "", None, "")
    node = root
    try:
        for i, part in enumerate(parts):
            st = os.stat(part, dir_fd=node.fd, follow_symlinks=False)
            if stat.S_ISREG(st.st_mode) and i == len(parts) - 1:
                return node, part
            nxt = node.child(part)
            node.release()
            node = nxt
    except OSError:
        node.release()
        raise ImportRefused(MSG_CHANGED.format(path=path), status=409) from None
    return node, None


def _entries(folder: _Dir) -> list[os.DirEntry]:
    with os.scandir(folder.fd) as it:
        return sorted(it, key=lambda e: e.name)


def _walk(top: _Dir, skipped: list[tuple[str, str]]) -> Iterator[_Source | None]:
    """Every regular file under ``top`` (whose reference the walk takes over), depth first, in name order,
    each yielded with a reference on its folder that the consumer releases. None is yielded for each entry
    skipped, so the caller can count."""
    stack = [top]
    try:
        yield from _walk_stack(stack, skipped)
    finally:
        for folder in stack:
            folder.release()


def _walk_stack(stack: list[_Dir], skipped: list[tuple[str, str]]) -> Iterator[_Source | None]:
    while stack:
        folder = stack.pop()
        try:
            if not folder.in_place():
                skipped.append((folder.rel or ".", SKIP_MOVED))
                yield None
                continue
            subfolders = []
            for entry in _entries(folder):
                rel = f"{folder.rel}/{entry.name}" if folder.rel else entry.name
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    skipped.append((rel, SKIP_UNREADABLE))
                    yield None
                    continue
                if stat.S_ISLNK(st.st_mode):
                    skipped.append((rel, SKIP_LINK))
                    yield None
                elif stat.S_ISDIR(st.st_mode):
                    subfolders.append(entry.name)
                elif not stat.S_ISREG(st.st_mode):
                    skipped.append((rel, SKIP_NOT_FILE))
                    yield None
                else:
                    folder.refs += 1
                    yield _Source(folder, entry.name, (st.st_dev, st.st_ino))
            for name in reversed(subfolders):
                try:
                    stack.append(folder.child(name))
                except OSError:  # replaced by a link or removed since the listing
                    skipped.append((f"{folder.rel}/{name}" if folder.rel else name, SKIP_LINK))
                    yield None
        finally:
            folder.release()


def _copy(src: _Source, tmp_root: Path) -> Path:
    """Copy ``src`` to a temporary file, opened through its folder's descriptor without following a link,
    after checking that its folder is still where it was under the root. Records the identity read."""
    if not src.folder.in_place():
        raise _Moved()
    fd = os.open(src.name, _FILE_FLAGS, dir_fd=src.folder.fd)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fh.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise OSError("not a regular file")
        os.set_blocking(fh.fileno(), True)
        src.ident = (st.st_dev, st.st_ino)
        out_fd, name = tempfile.mkstemp(prefix="inbox-", suffix=".dcm", dir=tmp_root)
        try:
            with os.fdopen(out_fd, "wb") as out:
                while chunk := fh.read(1024 * 1024):
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    return Path(name)


class _Moved(Exception):
    pass


def _remove(src: _Source) -> str | None:
    """Remove the original through its folder's descriptor; None when removed, else why it was kept."""
    if not src.folder.in_place():
        return KEPT_MOVED
    same = _entry_is(src.folder.fd, src.name, src.ident, stat.S_ISREG)
    if same is None:
        return None
    if not same:
        return KEPT_CHANGED
    try:
        os.unlink(src.name, dir_fd=src.folder.fd)
    except FileNotFoundError:
        pass
    return None


def inbox_import(*, path: str, params: dict[str, str], user, progress: Progress | None = None,
                 report: ImportReport | None = None) -> ImportReport:
    """Import every DICOM file under ``path`` (inside the inbox root); report what was skipped."""
    from prearchive.services.intake import IntakeError, dicom_files_receive

    root, target = inbox_resolve(path=path)
    try:
        root_fd = os.open(root, _DIR_FLAGS)
    except OSError:
        raise ImportRefused(MSG_CHANGED.format(path=path), status=409) from None
    top, file_name = _open_target(root_fd, target.relative_to(root).parts, path)
    report = report if report is not None else ImportReport()
    tmp_root = Path(str(settings.UPLOAD_TMP_ROOT))
    tmp_root.mkdir(parents=True, exist_ok=True)
    cleanup = _truthy(params.get("cleanupAfterImport"))
    skipped: list[tuple[str, str]] = []
    if file_name is not None:
        sources: Iterator[_Source | None] = iter([_Source(top, file_name, (0, 0))])  # takes top's reference
    else:
        sources = _walk(top, skipped)
    waiting: deque[_Source] = deque()  # the files handed to intake whose results are to come
    counted = 0  # files read or skipped so far, for progress
    done = 0

    def temporaries():
        nonlocal counted
        for src in sources:
            if src is None:
                counted += 1
                continue
            try:
                tmp = _copy(src, tmp_root)
            except _Moved:
                skipped.append((src.rel, SKIP_MOVED))
                src.folder.release()
                counted += 1
                continue
            except OSError:
                skipped.append((src.rel, SKIP_UNREADABLE))
                src.folder.release()
                counted += 1
                continue
            waiting.append(src)
            yield tmp

    results = dicom_files_receive(temporaries(), source="inbox", params=params, user=user,
                                  prevent_anon=_truthy(params.get("prevent_anon")))
    try:
        for result in results:  # one a file, in order
            src = waiting.popleft()
            try:
                report.add(result, src.rel)
                if cleanup and result.ok:
                    kept = _remove(src)
                    if kept is not None:
                        skipped.append((src.rel, kept))
            finally:
                src.folder.release()
            done += 1
            if progress is not None:
                progress(done + counted, done + counted + len(waiting))
    except IntakeError as exc:
        raise ImportRefused(MSG_INTAKE_FAILED.format(detail=exc), status=503) from None
    finally:
        for src in waiting:
            src.folder.release()
        if hasattr(sources, "close"):
            sources.close()
    for name, reason in skipped:
        report.skip(name, reason)
    logger.info("inbox import: %d stored, %d duplicate, %d filtered, %d refused, %d skipped",
                report.stored, report.duplicates, report.filtered, report.rejected, report.skipped_total)
    import_commit(report=report, params=params)
    report.refusals_raise()  # the originals of refused files stay in the inbox
    return report
