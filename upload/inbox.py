"""The DICOM inbox: import a folder (or file) on the server, under the admin-configured inbox root only.

The requested path is resolved with every symbolic link followed and must still lie inside the (resolved)
root. The walk never follows links: a linked file or folder inside the root is skipped and reported, as
are devices, sockets and unreadable files. Each file is copied (opened with O_NOFOLLOW, so a file swapped
for a link after the check is refused) to a temporary file that intake takes over; the originals are
left in place unless ``cleanupAfterImport=true``.
"""
from __future__ import annotations

import logging
import os
import stat
import tempfile
from collections import deque
from pathlib import Path

from django.conf import settings

from xnatlite.selectors import site_config_get

from .services import MSG_INTAKE_FAILED, ImportRefused, ImportReport, Progress, import_commit, _truthy

logger = logging.getLogger(__name__)

MSG_INBOX_OFF = "The DICOM inbox is not configured on this site (an administrator sets its root folder)."
MSG_OUTSIDE = "The path {path} is outside the DICOM inbox root; refused."
MSG_MISSING = "The path {path} does not exist in the DICOM inbox."
MSG_NO_PATH = "Give the server-side folder to import with the path parameter."


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


def _walk(target: Path, root: Path, skipped: list[tuple[str, str]]) -> list[Path]:
    if target.is_file():
        return [target]
    found = []
    for dirpath, dirnames, filenames in os.walk(target, followlinks=False):
        for d in list(dirnames):
            if os.path.islink(os.path.join(dirpath, d)):
                skipped.append((os.path.relpath(os.path.join(dirpath, d), root), "symbolic link (not followed)"))
                dirnames.remove(d)
        dirnames.sort()
        for f in sorted(filenames):
            full = Path(dirpath) / f
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode):
                skipped.append((str(full.relative_to(root)), "symbolic link (not followed)"))
            elif not stat.S_ISREG(mode):
                skipped.append((str(full.relative_to(root)), "not a regular file"))
            else:
                found.append(full)
    return found


def _copy_nofollow(src: Path, tmp_root: Path) -> Path:
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise OSError("not a regular file")
        out_fd, name = tempfile.mkstemp(prefix="inbox-", suffix=".dcm", dir=tmp_root)
        try:
            with os.fdopen(out_fd, "wb") as out:
                while chunk := fh.read(1024 * 1024):
                    out.write(chunk)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
    return Path(name)


def inbox_import(*, path: str, params: dict[str, str], user, progress: Progress | None = None) -> ImportReport:
    """Import every DICOM file under ``path`` (inside the inbox root); report what was skipped."""
    from prearchive.services.intake import IntakeError, dicom_files_receive

    root, target = inbox_resolve(path=path)
    report = ImportReport()
    skipped: list[tuple[str, str]] = []
    sources = _walk(target, root, skipped)
    for name, reason in skipped:
        report.skip(name, reason)
    tmp_root = Path(str(settings.UPLOAD_TMP_ROOT))
    tmp_root.mkdir(parents=True, exist_ok=True)
    cleanup = _truthy(params.get("cleanupAfterImport"))
    total = len(sources)
    waiting: deque[tuple[Path, str]] = deque()  # the files handed to intake whose results are to come
    unreadable = 0

    def temporaries():
        nonlocal unreadable
        for src in sources:
            name = str(src.relative_to(root))
            try:
                tmp = _copy_nofollow(src, tmp_root)
            except OSError:
                report.skip(name, "could not be read (or was replaced by a link)")
                unreadable += 1
                continue
            waiting.append((src, name))
            yield tmp

    done = 0
    results = dicom_files_receive(temporaries(), source="inbox", params=params, user=user,
                                  prevent_anon=_truthy(params.get("prevent_anon")))
    try:
        for result in results:  # one a file, in order
            src, name = waiting.popleft()
            report.add(result, name)
            if cleanup and result.ok:
                src.unlink(missing_ok=True)
            done += 1
            if progress is not None:
                progress(done + unreadable, total)
    except IntakeError as exc:
        raise ImportRefused(MSG_INTAKE_FAILED.format(detail=exc), status=503) from None
    logger.info("inbox import: %d stored, %d duplicate, %d filtered, %d refused, %d skipped",
                report.stored, report.duplicates, report.filtered, report.rejected, report.skipped_total)
    import_commit(report=report, params=params)
    return report
