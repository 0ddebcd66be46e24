"""Issue 16 item 6: a Deflated dataset is inflated with a cap. One 1 MB C-STORE in Deflated Explicit VR
Little Endian that inflates to 1 GiB used to take the receiver from about 113 MB to 2.2 GB; the same bytes
in a zip or a gradual-DICOM body did it to the web process. Now each is refused with a failure status (or
answer), the process's peak memory (VmHWM, reset before the send) stays within 200 MB of where it was,
and nothing is stored. A Deflated file within the cap is taken in as before."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.uid import DeflatedExplicitVRLittleEndian, MRImageStorage
from pynetdicom import AE

from prearchive.models import IntakeRejection, PrearchiveFile, PrearchiveSession
from tests.dicom_factory import dataset_bytes, deflated_bomb, make_dataset
from tests.hardening.conftest import fast_site, fault_env, free_port, procs, receiver  # noqa: F401 - fixtures
from tests.upload.helpers import MEMBER, basic

MB = 1024 * 1024
MAX_GROWTH = 200 * MB


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = deflated_bomb(tmp_path_factory.mktemp("deflate") / "bomb.dcm")
    assert path.stat().st_size < 2 * MB
    return path


def _peak(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _peak_reset(pid: int | str = "self") -> int:
    """Reset the peak resident size to the current one (Linux: 5 > clear_refs), and return it."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")
    return _peak(pid)


def _nothing_stored() -> None:
    assert not PrearchiveFile.objects.exists()
    assert not list(Path(str(settings.PREARCHIVE_ROOT)).rglob("*.dcm"))
    assert not [p for p in Path(str(settings.UPLOAD_TMP_ROOT)).rglob("*") if p.is_file()]
    rejection = IntakeRejection.objects.get()
    assert "Deflated" in rejection.reason and "inflates to more than" in rejection.reason


def _small_deflated(**tags) -> bytes:
    ds = make_dataset(**tags)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    return dataset_bytes(ds)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_c_store_of_a_deflate_bomb_is_refused_without_the_memory(bomb, fault_env, tmp_path, procs, monkeypatch):
    from pynetdicom import _config

    monkeypatch.setattr(_config, "STORE_SEND_CHUNKED_DATASET", True)  # send the file's bytes, not decoded
    fast_site(idle=3600)
    port = free_port()
    scp = receiver(fault_env, tmp_path / "receiver.log", port)
    procs.append(scp)
    pid = scp.popen.pid
    ae = AE(ae_title="SCANNER")
    ae.add_requested_context("1.2.840.10008.1.1")
    ae.add_requested_context(MRImageStorage, [DeflatedExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="XNATLITE")
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0  # the receiver is up and has done its imports
    before = _peak_reset(pid)
    answer = assoc.send_c_store(bomb)  # the file's own (deflated) bytes, sent as they are
    after = _peak(pid)
    assert "Status" in answer, scp.text()[-3000:]
    status = answer.Status
    assert status in (0xA700, 0xC000) or status & 0xF000 == 0xC000, hex(status)  # a failure, not a warning
    assert after - before < MAX_GROWTH, (before // MB, after // MB)
    _nothing_stored()
    # A Deflated file within the cap is stored, its bytes as sent.
    small = _small_deflated(StudyInstanceUID="1.2.3.16.6")
    path = tmp_path / "small.dcm"
    path.write_bytes(small)
    assert assoc.send_c_store(path).Status == 0
    assoc.release()
    assert scp.popen.poll() is None  # still serving
    from tests.conftest import wait_until

    wait_until(lambda: PrearchiveFile.objects.count() == 1, timeout=30, what="the small file's row")
    assert PrearchiveSession.objects.get().tag == "1.2.3.16.6"


@pytest.mark.django_db
def test_gradual_dicom_body_of_a_deflate_bomb_is_refused_without_the_memory(client, member, site, bomb):
    body = bomb.read_bytes()
    before = _peak_reset()
    r = client.post("/data/services/import?PROJECT_ID=PROJ1&SUBJECT_ID=D1&EXPT_LABEL=D1_MR", data=body,
                    content_type="application/dicom", **basic(*MEMBER))
    after = _peak()
    assert r.status_code < 500, r.content
    assert after - before < MAX_GROWTH, (before // MB, after // MB)
    _nothing_stored()


@pytest.mark.django_db
def test_dicom_zip_with_a_deflate_bomb_is_refused_without_the_memory(client, member, site, bomb):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.write(bomb, "study/bomb.dcm")
    before = _peak_reset()
    r = client.post("/data/services/import?import-handler=DICOM-zip&PROJECT_ID=PROJ1&SUBJECT_ID=D2"
                    "&EXPT_LABEL=D2_MR", data=buf.getvalue(), content_type="application/zip", **basic(*MEMBER))
    after = _peak()
    assert r.status_code < 500, r.content
    assert after - before < MAX_GROWTH, (before // MB, after // MB)
    _nothing_stored()


@pytest.mark.django_db
def test_a_deflated_file_within_the_cap_is_taken_in_and_the_site_limit_applies(client, member, site):
    small = _small_deflated(PatientComments="Project:PROJ1")
    r = client.post("/data/services/import?PROJECT_ID=PROJ1&SUBJECT_ID=D3&EXPT_LABEL=D3_MR", data=small,
                    content_type="application/dicom", **basic(*MEMBER))
    assert r.status_code == 200, r.content
    (stored,) = Path(str(settings.PREARCHIVE_ROOT)).rglob("*.dcm")
    assert stored.read_bytes() == small  # no site script: stored as sent
    assert PrearchiveFile.objects.get().transfer_syntax_uid == DeflatedExplicitVRLittleEndian
    site.upload_max_bytes = 300  # uploadMaxBytes below what this file inflates to (though not its size)
    site.save()
    from prearchive.services.intake import dicom_file_receive

    data = _small_deflated()
    assert len(data) < 1000
    result = dicom_file_receive(data=data, source="test")  # as the receiver hands it over
    assert result.status == "rejected" and "inflates to more than 300 bytes" in result.reason
    assert PrearchiveFile.objects.count() == 1
