"""Safe extraction of uploaded archives (zip, tar, tar.gz/tgz, gz), before anything is imported.

Decision: extraction is a separate, complete first phase. Every entry of the archive (and of archives
nested in it, to ``max_depth``) is checked and written into a private temporary folder, counting the bytes
really decompressed. Any violation (a path that escapes, a link, a device, too many entries, too many
bytes, a suspicious compression ratio, a truncated or corrupt archive) removes that folder and raises
``ArchiveRejected``: nothing has been given to intake yet, so a refused upload, including a zip bomb found
half-way through, leaves nothing behind. The price is temporary disk space up to ``upload_max_bytes``.

Entries are written under generated names (``000001.dcm``), never under the names in the archive, so even
a check that was missed could not write outside the folder. The names are only kept for the report.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Callable

CHUNK = 1024 * 1024
# The compression-ratio check starts once an entry (or a tar stream) has produced this much: small,
# highly compressible files (a blank slice) are normal, and the total-size limit bounds them anyway.
RATIO_GRACE_BYTES = 1024 * 1024
MAX_DEPTH = 3
JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$|Thumbs\.db$|\._)")

MSG_TRUNCATED = "The archive {name} is truncated or corrupt."
MSG_UNSAFE_PATH = "The archive entry {entry} has an unsafe path (absolute or containing '..'); upload refused."
MSG_LINK = "The archive entry {entry} is a link; archives with links are refused."
MSG_DEVICE = "The archive entry {entry} is a device or other special file; upload refused."
MSG_ENTRIES = "The archive has more than {limit} entries; upload refused."
MSG_BYTES = "The archive expands to more than {limit} bytes; upload refused."
MSG_RATIO = ("The archive entry {entry} expands more than {limit} times (a zip bomb?); upload refused.")
MSG_DEPTH = "Archives nested more than {limit} deep are refused ({entry})."
MSG_FORMAT = "Unsupported format UNKNOWN ({name}): upload a .zip, .tar, .tar.gz or .tgz file."
MSG_EMPTY = "The archive {name} contains no files."


class ArchiveRejected(Exception):
    """The upload is refused; the message is safe to show to the user (no PHI: entry names are the
    uploader's own)."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_entries: int
    max_ratio: int
    max_depth: int = MAX_DEPTH

    @classmethod
    def from_site_config(cls) -> "Limits":
        from xnatlite.selectors import site_config_get

        config = site_config_get()
        return cls(config.upload_max_bytes, config.upload_max_entries, config.upload_max_compression_ratio)


@dataclass
class Extraction:
    root: Path
    files: list[tuple[Path, str]] = field(default_factory=list)   # (file on disk, name in the archive)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name in the archive, reason)
    entries: int = 0
    bytes: int = 0

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


_FORMATS = [("TAR", re.compile(r"\.[tx]ar$", re.I)), ("TGZ", re.compile(r"\.t(ar\.)?gz$", re.I)),
            ("ZIP", re.compile(r"\.z(ip|ar)$", re.I)), ("GZ", re.compile(r"\.gz$", re.I))]


def archive_format(name: str) -> str:
    """XNAT's choice of format by file name (fileExtraction/Format.java): TAR, TGZ, ZIP, GZ or UNKNOWN."""
    for fmt, pattern in _FORMATS:
        if pattern.search(name or ""):
            return fmt
    return "UNKNOWN"


def archive_sniff(path: Path) -> str:
    """The format from the first bytes, for bodies that came without a usable name."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "ZIP"
    if head.startswith(b"\x1f\x8b"):
        return "TGZ"  # tarfile's "r|*" also reads a gzipped tar; a lone gzipped file is rare here
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "TAR"
    return "UNKNOWN"


def is_dicom_file(path: Path) -> bool:
    """A Part 10 file: 'DICM' after the 128-byte preamble."""
    with open(path, "rb") as fh:
        fh.seek(128)
        return fh.read(4) == b"DICM"


def _check_name(entry: str) -> None:
    name = entry.replace("\\", "/")
    if not name or "\x00" in name or name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise ArchiveRejected(MSG_UNSAFE_PATH.format(entry=entry))
    if any(part == ".." for part in name.split("/")):
        raise ArchiveRejected(MSG_UNSAFE_PATH.format(entry=entry))


class _CountingReader:
    """Counts the compressed bytes read from the underlying file (tar.gz ratio check)."""

    def __init__(self, raw: BinaryIO):
        self.raw, self.count = raw, 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data


class _Extractor:
    def __init__(self, root: Path, limits: Limits):
        self.limits = limits
        self.result = Extraction(root=root)
        self._n = 0

    # -------------------------------------------------------------- bookkeeping

    def _count_entry(self) -> None:
        self.result.entries += 1
        if self.result.entries > self.limits.max_entries:
            raise ArchiveRejected(MSG_ENTRIES.format(limit=self.limits.max_entries))

    def _reserve(self, size: int) -> None:
        if self.result.bytes + size > self.limits.max_bytes:
            raise ArchiveRejected(MSG_BYTES.format(limit=self.limits.max_bytes))

    def _bomb(self, out: int, compressed: int) -> bool:
        return out > RATIO_GRACE_BYTES and out > self.limits.max_ratio * max(compressed, 1)

    def _new_path(self, entry: str) -> Path:
        self._n += 1
        fmt = archive_format(entry)
        suffix = {"ZIP": ".zip", "TAR": ".tar", "TGZ": ".tgz", "GZ": ".gz"}.get(fmt, ".dcm")
        return self.result.root / f"{self._n:06d}{suffix}"

    def _copy(self, src: BinaryIO, dest: Path, entry: str, bomb: Callable[[int], bool]) -> int:
        """Stream ``src`` to ``dest``, counting real output; ``bomb(written)`` says whether the output so
        far is out of proportion to the compressed input that produced it."""
        written = 0
        with open(dest, "wb") as out:
            while True:
                chunk = src.read(CHUNK)
                if not chunk:
                    break
                written += len(chunk)
                self._reserve(len(chunk))
                self.result.bytes += len(chunk)
                if bomb(written):
                    raise ArchiveRejected(MSG_RATIO.format(entry=entry, limit=self.limits.max_ratio))
                out.write(chunk)
        return written

    def _done(self, path: Path, entry: str, depth: int) -> None:
        """A file was written: recurse into a nested archive, keep DICOM, skip the rest."""
        fmt = archive_format(entry)
        if fmt != "UNKNOWN":
            if depth + 1 > self.limits.max_depth:
                raise ArchiveRejected(MSG_DEPTH.format(limit=self.limits.max_depth, entry=entry))
            self.extract(path, entry, fmt, depth + 1)
            path.unlink()
        elif JUNK.search(entry):
            path.unlink()
            self.result.skipped.append((entry, "operating-system metadata file"))
        elif not is_dicom_file(path):
            path.unlink()
            self.result.skipped.append((entry, "not a DICOM file"))
        else:
            self.result.files.append((path, entry))

    # -------------------------------------------------------------- formats

    def extract(self, archive: Path, name: str, fmt: str, depth: int) -> None:
        try:
            if fmt == "ZIP":
                self._zip(archive, name, depth)
            elif fmt in ("TAR", "TGZ"):
                self._tar(archive, name, depth)
            elif fmt == "GZ":
                self._gz(archive, name, depth)
            else:
                raise ArchiveRejected(MSG_FORMAT.format(name=name))
        except ArchiveRejected:
            raise
        except (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile,
                NotImplementedError, ValueError) as exc:
            raise ArchiveRejected(MSG_TRUNCATED.format(name=name)) from exc

    def _zip(self, archive: Path, name: str, depth: int) -> None:
        prefix = name + "/" if depth else ""
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:  # every header first: refuse before writing anything
                entry = prefix + info.filename
                self._count_entry()
                _check_name(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise ArchiveRejected(MSG_LINK.format(entry=entry))
                if mode and stat.S_IFMT(mode) not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise ArchiveRejected(MSG_DEVICE.format(entry=entry))
                if (info.file_size > RATIO_GRACE_BYTES
                        and info.file_size > self.limits.max_ratio * max(info.compress_size, 1)):
                    raise ArchiveRejected(MSG_RATIO.format(entry=entry, limit=self.limits.max_ratio))
            self._reserve(sum(i.file_size for i in infos if not i.is_dir()))
            for info in infos:
                entry = prefix + info.filename
                if info.is_dir():
                    continue
                if info.flag_bits & 0x1:
                    self.result.skipped.append((entry, "encrypted"))
                    continue
                dest = self._new_path(entry)
                with zf.open(info) as src:
                    self._copy(src, dest, entry, lambda w, c=info.compress_size: self._bomb(w, c))
                self._done(dest, entry, depth)

    def _tar(self, archive: Path, name: str, depth: int) -> None:
        prefix = name + "/" if depth else ""
        with open(archive, "rb") as raw:
            counter = _CountingReader(raw)
            stream_out = 0
            with tarfile.open(fileobj=counter, mode="r|*") as tf:
                for member in tf:
                    entry = prefix + member.name
                    self._count_entry()
                    _check_name(member.name)
                    if member.issym() or member.islnk():
                        raise ArchiveRejected(MSG_LINK.format(entry=entry))
                    if member.isdev() or member.isfifo():
                        raise ArchiveRejected(MSG_DEVICE.format(entry=entry))
                    if not member.isfile():
                        continue  # directories and tar-internal extension headers
                    self._reserve(member.size)
                    dest = self._new_path(entry)
                    src = tf.extractfile(member)
                    base_out = stream_out
                    written = self._copy(src, dest, entry,
                                         lambda w, b=base_out: self._bomb(b + w, counter.count))
                    stream_out += written
                    if written != member.size:
                        raise ArchiveRejected(MSG_TRUNCATED.format(name=name))
                    self._done(dest, entry, depth)

    def _gz(self, archive: Path, name: str, depth: int) -> None:
        entry = re.sub(r"\.gz$", "", name, flags=re.I) or "upload"
        self._count_entry()
        with open(archive, "rb") as raw:
            counter = _CountingReader(raw)
            with gzip.GzipFile(fileobj=counter) as src:
                dest = self._new_path(entry)
                self._copy(src, dest, entry, lambda w: self._bomb(w, counter.count))
        self._done(dest, entry, depth)


def archive_extract(*, archive: Path, name: str, limits: Limits, tmp_root: Path) -> Extraction:
    """Check and extract ``archive`` (its format from ``name``, else from its first bytes) into a new
    folder under ``tmp_root``. Raises ``ArchiveRejected`` with nothing left behind."""
    fmt = archive_format(name)
    if fmt == "UNKNOWN":
        fmt = archive_sniff(archive)
    if fmt == "UNKNOWN":
        raise ArchiveRejected(MSG_FORMAT.format(name=name))
    Path(tmp_root).mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="extract-", dir=tmp_root))
    extractor = _Extractor(root, limits)
    try:
        extractor.extract(Path(archive), name, fmt, 0)
        if extractor.result.entries == 0:
            raise ArchiveRejected(MSG_EMPTY.format(name=name))
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    return extractor.result


def file_mode_ok(path: str | os.PathLike) -> bool:
    """A regular file, not a link (for server-side paths)."""
    return stat.S_ISREG(os.lstat(path).st_mode)
