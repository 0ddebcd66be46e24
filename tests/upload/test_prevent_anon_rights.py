"""Who may skip the site and project scripts with prevent_anon=true is a site setting, preventAnonAllowed
(default: site admins and the project's owners); from anyone else the flag is ignored and the scripts run
(issue 16 item 10)."""
from __future__ import annotations

import json

import pydicom
import pytest

from prearchive.models import PrearchiveFile, PrearchiveSession
from tests.dicom_factory import make_dataset, write_dataset
from tests.upload.helpers import ADMIN, MEMBER, basic
from xnatlite.selectors import site_config_get

URL = "/data/services/import"
OWNER = ("olivia", "olivia-pass-1")


def _send(client, tmp_path, auth, label, handler="gradual-DICOM"):
    path = write_dataset(make_dataset(PatientName="Doe^Jane", PatientID="PID777"), tmp_path / f"{label}.dcm")
    r = client.post(f"{URL}?import-handler={handler}&PROJECT_ID=PROJ1&SUBJECT_ID=SUBJ_{label}&EXPT_LABEL={label}"
                    "&prevent_anon=true", data=path.read_bytes(), content_type="application/dicom", **basic(*auth))
    assert r.status_code == 200, r.content
    session = PrearchiveSession.objects.get(name=label)
    row = PrearchiveFile.objects.get(session=session)
    from django.conf import settings

    stored = pydicom.dcmread(settings.PREARCHIVE_ROOT / session.relative_dir / row.relative_path)
    return session, stored


@pytest.fixture
def people(admin_user, member, owner):
    assert site_config_get().enable_sitewide_anonymization_script  # XNAT's default script: PatientName := subject
    assert site_config_get().prevent_anon_allowed == "owners"


def test_an_uploader_who_is_not_an_owner_cannot_skip_the_site_script(client, people, tmp_path):
    session, stored = _send(client, tmp_path, MEMBER, "M1")
    assert str(stored.PatientName) == "SUBJ_M1" and stored.PatientID == "M1"  # the site script ran
    assert session.prevent_anon is False  # so the project script runs at archive time too


@pytest.mark.parametrize("who", [OWNER, ADMIN])
def test_owners_and_site_admins_may_skip_it_by_default(client, people, tmp_path, who):
    session, stored = _send(client, tmp_path, who, "K1")
    assert str(stored.PatientName) == "Doe^Jane"  # the client said it had anonymized already
    assert session.prevent_anon is True


def test_the_site_setting_says_who_may(client, people, tmp_path):
    r = client.post("/xapi/siteConfig/preventAnonAllowed", json.dumps("uploaders"),
                    content_type="application/json", **basic(*ADMIN))
    assert r.status_code == 200, r.content
    _, stored = _send(client, tmp_path, MEMBER, "M2")
    assert str(stored.PatientName) == "Doe^Jane"
    r = client.post("/xapi/siteConfig/preventAnonAllowed", json.dumps("admins"),
                    content_type="application/json", **basic(*ADMIN))
    assert r.status_code == 200, r.content
    _, stored = _send(client, tmp_path, OWNER, "O2")
    assert str(stored.PatientName) == "SUBJ_O2"
    r = client.post("/xapi/siteConfig/preventAnonAllowed", "everyone", content_type="text/plain", **basic(*ADMIN))
    assert r.status_code == 400 and "preventAnonAllowed" in r.content.decode()
