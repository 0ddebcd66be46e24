"""Sessions whose uploader already ran the scripts (prevent_anon, as XNAT's Desktop Client does) are
not anonymized again at archive time, unless their labels change there (seed 003)."""
from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from prearchive.services.archive import session_archive, session_archive_request
from prearchive.services.intake import dicom_file_receive
from tests.archive.conftest import build, incoming, read_all
from tests.dicom_factory import make_dataset


def _receive(label: str) -> PrearchiveSession:
    study, series = generate_uid(), generate_uid()
    for i in range(2):
        ds = make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, InstanceNumber=i + 1,
                          StudyDescription="typed by uploader")
        result = dicom_file_receive(path=incoming(ds), source="uploader", prevent_anon=True,
                                    params={"PROJECT_ID": "PROJ1", "SUBJECT_ID": "S1", "EXPT_LABEL": label})
        assert result.ok, result.reason
    session = PrearchiveSession.objects.get(tag=study)
    assert session.prevent_anon
    build(session.pk)
    return session


@pytest.mark.django_db
@pytest.mark.parametrize("relabel", [False, True])
def test_prevent_anon_session_keeps_client_edits_unless_relabelled(scripted_project, relabel):
    session = _receive("CLIENT1")
    session_archive_request(session=session, actor="admin", label="NEWLABEL" if relabel else None)
    assert session_archive(session_id=session.pk) == "archived"
    files = read_all("PROJ1", "NEWLABEL" if relabel else "CLIENT1")
    assert len(files) == 2
    for ds in files:
        if relabel:
            assert ds.StudyDescription == "PROJ1" and ds.PatientID == "NEWLABEL"
        else:
            assert ds.StudyDescription == "typed by uploader"
