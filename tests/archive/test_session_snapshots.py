"""The archived session page: a snapshot per scan (the middle image, enlargeable), a montage, a DICOM header
viewer and per-scan and per-resource downloads."""
from __future__ import annotations

import io
import re
import zipfile
from html import unescape

import pytest
from PIL import Image

from prearchive.services.archive import session_archive, session_archive_request
from tests.archive.conftest import client_for, ready_session

pytestmark = pytest.mark.django_db


@pytest.fixture
def archived(project, member, site):
    session = ready_session(project="PROJ1", subject="SNAP1", label="SNAP1_MR",
                            series=((1, "MR", 5), (2, "MR", 2)), rows=64)
    session_archive_request(session=session, actor="mike")
    assert session_archive(session_id=session.pk) == "archived"
    return client_for(member)


def _image(response) -> Image.Image:
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


def test_snapshots_montage_header_and_downloads(archived, outsider):
    client = archived
    page = unescape(client.get("/archive/PROJ1/sessions/SNAP1_MR/").content.decode())
    base = "/archive/PROJ1/sessions/SNAP1_MR/scans/1/"
    assert f'src="{base}snapshot.png"' in page and f'href="{base}snapshot.png?size=full"' in page
    assert f'href="{base}montage.png"' in page and f'href="{base}header"' in page
    small = _image(client.get(base + "snapshot.png"))
    large = _image(client.get(base + "snapshot.png?size=full"))
    assert large.width > small.width
    montage = _image(client.get(base + "montage.png"))
    assert montage.width == 4 * 128 and montage.height == 2 * 128  # 5 images: two rows of four
    header = unescape(client.get(base + "header").content.decode())
    assert "file 3 of 5" in header and "(0008,0060)" in header
    assert "file 1 of 5" in unescape(client.get(base + "header?file=1").content.decode())
    for link in re.findall(r'href="(/data/archive/[^"]+scans/2/[^"]+)"', page):
        answer = client.get(link)
        assert answer.status_code == 200, link
        names = zipfile.ZipFile(io.BytesIO(b"".join(answer.streaming_content) if answer.streaming else answer.content)).namelist()
        assert len(names) == 2 and all("/SCANS/2/" in n for n in names), names
    assert client.get("/archive/PROJ1/sessions/SNAP1_MR/scans/9/snapshot.png").status_code == 404
    assert client_for(outsider).get(base + "snapshot.png").status_code == 404
