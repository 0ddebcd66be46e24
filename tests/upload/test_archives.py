"""Safe extraction: every unsafe archive is refused as a whole and leaves nothing behind."""
from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import pytest

from tests.dicom_factory import make_dataset, write_dataset
from tests.upload.helpers import leftovers, session_files, tgz_of, zip_of
from upload.archives import ArchiveRejected, Limits, archive_extract, archive_format

LIMITS = Limits(max_bytes=10 * 1024**3, max_entries=1000, max_ratio=200)


def extract(tmp_path, archive, name=None, limits=LIMITS):
    return archive_extract(archive=archive, name=name or archive.name, limits=limits, tmp_root=tmp_path / "x")


def refused(tmp_path, archive, match, name=None, limits=LIMITS):
    with pytest.raises(ArchiveRejected, match=match):
        extract(tmp_path, archive, name, limits)
    assert leftovers(tmp_path / "x") == []


@pytest.mark.parametrize("name,fmt", [("a.zip", "ZIP"), ("a.ZAR", "ZIP"), ("a.tar", "TAR"), ("a.xar", "TAR"),
                                      ("a.tar.gz", "TGZ"), ("a.tgz", "TGZ"), ("a.gz", "GZ"), ("a.rar", "UNKNOWN"),
                                      ("upload", "UNKNOWN")])
def test_format_is_chosen_by_file_name_as_xnat_does(name, fmt):
    assert archive_format(name) == fmt


def test_zip_and_tgz_extract_dicom_and_list_the_rest(tmp_path):
    session_files(tmp_path / "s", series=1, per_series=3)
    z = zip_of(tmp_path / "s", tmp_path / "a.zip", extra={"notes.txt": b"hello", "__MACOSX/._x": b"x"})
    result = extract(tmp_path, z)
    assert sorted(n for _, n in result.files) == ["s1/i1.dcm", "s1/i2.dcm", "s1/i3.dcm"]
    assert ("notes.txt", "not a DICOM file") in result.skipped
    assert all(p.parent == result.root for p, _ in result.files)
    result.cleanup()
    t = tgz_of(tmp_path / "s", tmp_path / "a.tgz")
    result = extract(tmp_path, t)
    assert len(result.files) == 3
    result.cleanup()
    assert leftovers(tmp_path / "x") == []


def test_nested_archives_are_opened_to_a_small_depth(tmp_path):
    session_files(tmp_path / "s", series=1, per_series=2)
    inner = zip_of(tmp_path / "s", tmp_path / "inner.zip")
    with zipfile.ZipFile(tmp_path / "outer.zip", "w") as zf:
        zf.write(inner, "nested/inner.zip")
    result = extract(tmp_path, tmp_path / "outer.zip")
    assert sorted(n for _, n in result.files) == ["nested/inner.zip/s1/i1.dcm", "nested/inner.zip/s1/i2.dcm"]
    result.cleanup()
    # Four levels deep is refused.
    current = tmp_path / "outer.zip"
    for level in range(3):
        nxt = tmp_path / f"wrap{level}.zip"
        with zipfile.ZipFile(nxt, "w") as zf:
            zf.write(current, current.name)
        current = nxt
    refused(tmp_path, current, "nested more than 3 deep")


@pytest.mark.parametrize("evil", ["../../evil.dcm", "/etc/evil.dcm", "a/../../evil.dcm", "C:/evil.dcm",
                                  "..\\..\\evil.dcm"])
def test_zip_slip_and_absolute_paths_are_refused(tmp_path, evil):
    dcm = write_dataset(make_dataset(), tmp_path / "f.dcm").read_bytes()
    z = tmp_path / "slip.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("ok.dcm", dcm)
        zf.writestr(evil, dcm)
    refused(tmp_path, z, "unsafe path")
    assert not (tmp_path.parent / "evil.dcm").exists()


def test_links_and_devices_are_refused(tmp_path):
    z = tmp_path / "link.zip"
    with zipfile.ZipFile(z, "w") as zf:
        info = zipfile.ZipInfo("link.dcm")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    refused(tmp_path, z, "is a link")
    for kind, match in ((tarfile.SYMTYPE, "is a link"), (tarfile.LNKTYPE, "is a link"),
                        (tarfile.CHRTYPE, "device"), (tarfile.FIFOTYPE, "device")):
        t = tmp_path / f"t{kind!r}.tar"
        with tarfile.open(t, "w") as tf:
            member = tarfile.TarInfo("thing")
            member.type = kind
            member.linkname = "/etc/passwd"
            tf.addfile(member)
        refused(tmp_path, t, match)


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path, bomb_zip):
    refused(tmp_path, bomb_zip, "expands more than 200 times")


def test_tgz_bomb_is_stopped_while_streaming(tmp_path):
    t = tmp_path / "bomb.tgz"
    with tarfile.open(t, "w:gz") as tf:
        member = tarfile.TarInfo("zeros.dcm")
        member.size = 256 * 1024 * 1024
        tf.addfile(member, io.BufferedReader(io.BytesIO(bytes(member.size))))
    assert t.stat().st_size < 2 * 1024 * 1024
    refused(tmp_path, t, "expands more than 200 times")


def test_size_and_entry_limits(tmp_path):
    session_files(tmp_path / "s", series=1, per_series=4)
    z = zip_of(tmp_path / "s", tmp_path / "a.zip")
    refused(tmp_path, z, "more than 3 entries", limits=Limits(10**9, 3, 200))
    refused(tmp_path, z, "expands to more than 1000 bytes", limits=Limits(1000, 100, 200))


def test_truncated_and_corrupt_archives_are_refused(tmp_path):
    session_files(tmp_path / "s", series=1, per_series=3)
    z = zip_of(tmp_path / "s", tmp_path / "a.zip")
    data = z.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    refused(tmp_path, tmp_path / "cut.zip", "truncated or corrupt")
    t = tgz_of(tmp_path / "s", tmp_path / "a.tgz")
    data = t.read_bytes()
    (tmp_path / "cut.tgz").write_bytes(data[: len(data) // 2])
    refused(tmp_path, tmp_path / "cut.tgz", "truncated or corrupt")
    (tmp_path / "junk.zip").write_bytes(b"this is not a zip file at all")
    refused(tmp_path, tmp_path / "junk.zip", "truncated or corrupt")
    (tmp_path / "empty.zip").write_bytes(b"")
    refused(tmp_path, tmp_path / "empty.zip", "truncated or corrupt")


def test_unknown_format_is_refused(tmp_path):
    (tmp_path / "data.bin").write_bytes(b"\x00" * 600)
    refused(tmp_path, tmp_path / "data.bin", "Unsupported format UNKNOWN", name="upload")
