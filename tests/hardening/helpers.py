"""Sessions for the hardening tests, taken in through the one intake function."""
from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from pydicom.uid import generate_uid

from tests.dicom_factory import make_dataset, write_dataset

PROJECT_SCRIPT = """version "6.1"
(0010,0010) := subject
(0010,0020) := session
-(0010,0030)
-(0010,1040)
-(0010,1000)
-(0010,2154)
-(0008,0080)
"""


def send(*, project: str, subject: str, label: str, series=((1, 100),), rows: int = 8,
         study_uid: str | None = None, **tags) -> tuple[str, set[str]]:
    """Take a study in through intake (as the compressed uploader does). Returns (StudyInstanceUID, SOPs)."""
    from prearchive.services.intake import dicom_file_receive

    study_uid = study_uid or generate_uid()
    params = {"PROJECT_ID": project, "SUBJECT_ID": subject, "EXPT_LABEL": label}
    sops = set()
    tmp_root = Path(str(settings.UPLOAD_TMP_ROOT))
    for number, count in series:
        series_uid = generate_uid()
        for i in range(1, count + 1):
            ds = make_dataset(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SeriesNumber=number,
                              InstanceNumber=i, rows=rows, columns=rows, **tags)
            path = write_dataset(ds, tmp_root / f"in-{uuid.uuid4().hex}.dcm")
            result = dicom_file_receive(path=path, source="test", params=params)
            assert result.ok, result.reason
            sops.add(ds.SOPInstanceUID)
    return study_uid, sops


def build_now(session_id: int) -> str:
    from prearchive.models import PrearchiveSession
    from prearchive.services.builder import session_build

    S = PrearchiveSession.Status
    return session_build(session_id=session_id, expected=(S.RECEIVING, S.QUEUED_BUILDING))


def prearchive_sops(session) -> set[str]:
    from prearchive.models import PrearchiveFile

    return set(PrearchiveFile.objects.filter(session=session).values_list("sop_instance_uid", flat=True))
