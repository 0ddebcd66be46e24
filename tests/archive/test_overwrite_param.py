"""The import's ``overwrite`` parameter reaches the auto-archive (XNAT: overwrite=append|delete)."""
from __future__ import annotations

import pytest
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from prearchive.services.archive import _default_overwrite
from prearchive.services.intake import dicom_file_receive
from tests.archive.conftest import incoming
from tests.dicom_factory import make_dataset


@pytest.mark.django_db
@pytest.mark.parametrize("param, expected", [("delete", "delete"), ("append", "append"), ("none", "append"),
                                             ("", "append"), ("bogus", "append")])
def test_overwrite_parameter_decides_the_auto_archive_mode(project, site, param, expected):
    project.prearchive_code = 4  # AutoArchive: append unless the import says otherwise
    project.save()
    study = generate_uid()
    result = dicom_file_receive(path=incoming(make_dataset(StudyInstanceUID=study)), source="test",
                                params={"PROJECT_ID": "PROJ1", "SUBJECT_ID": "S", "EXPT_LABEL": "E",
                                        "overwrite": param})
    assert result.ok
    session = PrearchiveSession.objects.get(tag=study)
    assert _default_overwrite(session) == expected
