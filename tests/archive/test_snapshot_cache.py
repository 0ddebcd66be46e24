"""The archived session page's images (issue 15): a valid PNG of the expected size, windowed from the header's
WindowCenter/Width (else min..max), cached on disk beside the archive (atomically, not among the scan's
files), and outsiders get 404."""
from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.archive.conftest import client_for, ready_session
from xnatlite.archive.data import scan_files, session_folder
from xnatlite.archive.snapshots import CACHE_DIR
from xnatlite.models import ImageSession

pytestmark = pytest.mark.django_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _archive(label: str, **tags) -> ImageSession:
    from prearchive.services.archive import session_archive, session_archive_request

    pre = ready_session(project="PROJ1", subject="SUBJ1", label=label, series=((1, "MR", 5),), rows=32, **tags)
    session_archive_request(session=pre, actor="admin")
    assert session_archive(session_id=pre.pk) == "archived"
    return ImageSession.objects.get(label=label)


def _png(data: bytes) -> Image.Image:
    assert data.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_snapshot_png_windowed_from_the_header_and_cached(project, site, member, outsider):
    # 32x32 pixels valued 0..1023 in raster order; the header's window 100 +/- 100 clips everything from 200.
    session = _archive("WIN1", WindowCenter="100", WindowWidth="200")
    url = "/archive/PROJ1/sessions/WIN1/scans/1/snapshot.png"
    response = client_for(member).get(url)
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    image = _png(response.content)
    assert image.size == (96, 96) and image.mode == "L"  # 32 px shown at 3x (nearest neighbour)
    assert image.getpixel((0, 0)) == 0                  # value 0: the window's bottom
    assert image.getpixel((4 * 3, 3 * 3)) in (127, 128)  # value 100: its centre
    assert image.getpixel((8 * 3, 6 * 3)) == 255        # value 200: its top
    assert image.getpixel((95, 95)) == 255              # value 1023: above it
    assert _png(client_for(member).get(url + "?size=full").content).size == (512, 512)

    folder = session_folder(session) / CACHE_DIR / "1"
    cached = sorted(folder.iterdir())
    assert [p.name.split("-")[0] for p in cached] == [".full", ".snapshot"]
    assert response.content in [p.read_bytes() for p in cached]
    # Served from the cache: a changed cache file is what comes back (the source files are unchanged).
    snapshot_file = next(p for p in cached if p.name.startswith(".snapshot-"))
    marker = snapshot_file.read_bytes() + b"cached"
    snapshot_file.write_bytes(marker)
    assert client_for(member).get(url).content == marker
    assert all(f.path.suffix == ".dcm" or not f.path.name.startswith(".")
               for f in scan_files(session, list(session.scans.all())))
    assert not [f for f in scan_files(session, list(session.scans.all())) if CACHE_DIR in str(f.path)]

    assert client_for(outsider).get(url).status_code == 404
    assert client_for(outsider).get("/archive/PROJ1/sessions/WIN1/scans/1/montage.png").status_code == 404
    assert client_for(outsider).get("/archive/PROJ1/sessions/WIN1/scans/1/header").status_code == 404


def test_without_a_window_the_snapshot_spans_min_to_max(project, site, member):
    _archive("MINMAX1")
    image = _png(client_for(member).get("/archive/PROJ1/sessions/MINMAX1/scans/1/snapshot.png").content)
    assert (image.getpixel((0, 0)), image.getpixel((95, 95))) == (0, 255)
    assert 100 < image.getpixel((0, 16 * 3)) < 155  # value 512 of 0..1023: mid-grey
    montage = client_for(member).get("/archive/PROJ1/sessions/MINMAX1/scans/1/montage.png")
    assert _png(montage.content).size == (4 * 128, 2 * 128)
    assert len(list((session_folder(ImageSession.objects.get(label="MINMAX1")) / CACHE_DIR / "1")
                    .glob(".montage-*.png"))) == 1


def test_an_edit_after_snapshots_rewrites_only_the_dicom_files(scripted_project, member):
    from xnatlite.archive.services import archived_session_update

    session = _archive("EDIT1")
    client = client_for(member)
    assert client.get("/archive/PROJ1/sessions/EDIT1/scans/1/snapshot.png").status_code == 200
    assert client.get("/archive/PROJ1/sessions/EDIT1/scans/1/montage.png").status_code == 200
    session = archived_session_update(session=session, actor="mike", label="EDIT2", subject_label="SUBJ1",
                                      project_id="PROJ1")
    assert session.label == "EDIT2"
    files = scan_files(session, list(session.scans.all()))
    assert len(files) == 5 and all(not f.name.endswith(".png") for f in files)
    assert session.scans.get(scan_id="1").file_count == 5
    image = _png(client.get("/archive/PROJ1/sessions/EDIT2/scans/1/snapshot.png").content)
    assert image.size == (96, 96)
