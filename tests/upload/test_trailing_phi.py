"""Issue 16 item 2 end to end: patient data in a private sequence after the pixel data (GE ultrasound's
MovieGroup, after JPEG fragments) does not pass the site script, over C-STORE, gradual-DICOM and DICOM-zip.
The stored file is read back with pydicom."""
from __future__ import annotations

import io
import socket
import zipfile
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pydicom.uid import JPEGBaseline8Bit
from pynetdicom import AE

from prearchive.models import PrearchiveFile, PrearchiveSession
from prearchive.services import rowbatch
from tests.conftest import wait_until
from tests.dicom_factory import TAIL_PHI, add_tail, dataset_bytes, encapsulated, make_dataset
from tests.upload.helpers import MEMBER, basic
from upload.dicom_scp import ReceiverConfig, server_start
from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT

SCRIPT = DEFAULT_SITE_ANON_SCRIPT + "-(0010,0030)\nremoveAllPrivateTags\n"


def _ultrasound(**tags) -> bytes:
    ds = encapsulated(make_dataset(modality="OT", **tags), JPEGBaseline8Bit, frames=3)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # US multi-frame
    ds.Modality = "US"
    raw = dataset_bytes(add_tail(ds, "ge"))
    assert all(value.encode() in raw for value in TAIL_PHI.values())
    return raw


@pytest.fixture
def scrubbing_site(site):
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = SCRIPT
    site.save()
    return site


def _check_stored(session: PrearchiveSession, count: int = 1) -> None:
    rows = list(PrearchiveFile.objects.filter(session=session))
    assert len(rows) == count
    for row in rows:
        path = Path(str(settings.PREARCHIVE_ROOT)) / session.relative_dir / row.relative_path
        data = path.read_bytes()
        for value in (*TAIL_PHI.values(), "Doe^Jane", "19700101"):
            assert value.encode() not in data, value
        ds = pydicom.dcmread(path)
        assert 0x7FE11001 not in ds and 0x7FE10010 not in ds
        assert str(ds.PatientName) == session.subject and "PatientBirthDate" not in ds
        assert ds.file_meta.TransferSyntaxUID == JPEGBaseline8Bit and len(ds.PixelData) > 0


def test_c_store(transactional_db, scrubbing_site):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = server_start(ReceiverConfig.default(ae_title="XNATLITE", port=port), address="127.0.0.1")
    try:
        raw = _ultrasound(PatientComments="Project: none", StudyInstanceUID="1.2.3.99.1")
        ds = pydicom.dcmread(io.BytesIO(raw))
        ae = AE(ae_title="USCANNER")
        ae.add_requested_context(ds.SOPClassUID, [JPEGBaseline8Bit])
        assoc = ae.associate("127.0.0.1", port, ae_title="XNATLITE")
        assert assoc.is_established
        assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()
        session = PrearchiveSession.objects.get(tag="1.2.3.99.1")
        wait_until(lambda: PrearchiveFile.objects.filter(session=session).count() == 1, timeout=30,
                   what="the row")
        _check_stored(session)
    finally:
        server.shutdown()
        rowbatch.writer_stop()


@pytest.mark.django_db
def test_gradual_dicom(client, member, scrubbing_site):
    r = client.post("/data/services/import?PROJECT_ID=PROJ1&SUBJECT_ID=G1&EXPT_LABEL=G1_US",
                    data=_ultrasound(), content_type="application/dicom", **basic(*MEMBER))
    assert r.status_code == 200, r.content
    _check_stored(PrearchiveSession.objects.get())


@pytest.mark.django_db
def test_dicom_zip(client, member, scrubbing_site):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(2):
            zf.writestr(f"us/{i}.dcm", _ultrasound(StudyInstanceUID="1.2.3.99.2"))
    r = client.post("/data/services/import?import-handler=DICOM-zip&PROJECT_ID=PROJ1&SUBJECT_ID=Z1"
                    "&EXPT_LABEL=Z1_US", data=buf.getvalue(), content_type="application/zip", **basic(*MEMBER))
    assert r.status_code == 200, r.content
    _check_stored(PrearchiveSession.objects.get(), count=2)
