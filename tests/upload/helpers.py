"""Real archives of real DICOM for the upload tests."""
from __future__ import annotations

import base64
import tarfile
import zipfile
from pathlib import Path

from tests.dicom_factory import write_session


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"HTTP_AUTHORIZATION": f"Basic {token}"}


ADMIN = ("admin", "admin-pass-1")
MEMBER = ("mike", "mike-pass-1")


def session_files(folder: Path, *, series: int = 2, per_series: int = 3, **tags) -> list[Path]:
    return write_session(folder, series=series, per_series=per_series, **tags)


def zip_of(folder: Path, dest: Path, *, extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return dest


def tgz_of(folder: Path, dest: Path) -> Path:
    with tarfile.open(dest, "w:gz") as tf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                tf.add(path, path.relative_to(folder).as_posix())
    return dest


def leftovers(root: Path) -> list[str]:
    """Files left under a folder (the upload temp root or the prearchive)."""
    return [str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()]


def zip_bomb(dest: Path, *, gigabytes: float = 1.0) -> Path:
    """1 GB of zeros, deflated, written streaming (never held in memory)."""
    chunk = bytes(8 * 1024 * 1024)
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("zeros.dcm", "w", force_zip64=True) as out:
            for _ in range(int(gigabytes * 1024 / 8)):
                out.write(chunk)
    return dest
