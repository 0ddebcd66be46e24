"""Issue 14 item 4: identifiers the site script changed or removed are never stored. After a site script
that hashes the UIDs and removes the patient's name, ID and birth date, the whole database (pg_dump
--data-only), every REST answer about the session (prearchive and archive) and every log line and output of
intake, build and archive hold none of the original values."""
from __future__ import annotations

import logging
import os
import subprocess

import pytest
from django.db import connection
from django.test import Client
from pydicom.uid import generate_uid

from prearchive.models import PrearchiveSession
from prearchive.services.archive import session_archive, session_archive_request
from prearchive.services.builder import session_build
from tests.conftest import redis_flush
from tests.dicom_factory import make_dataset
from xnatlite.models import ImageSession

from .conftest import receive

pytestmark = pytest.mark.django_db(transaction=True)
S = PrearchiveSession.Status

HASHING = """version "6.1"
(0020,000D) := hashUID[(0020,000D)]
(0020,000E) := hashUID[(0020,000E)]
(0008,0018) := hashUID[(0008,0018)]
(0008,1155) := hashUID[(0008,1155)]
-(0010,0010)
-(0010,0020)
-(0010,0030)
"""
REMOVING = """version "6.1"
-(0020,000D)
(0008,0018) := hashUID[(0008,0018)]
-(0020,000E)
-(0010,0010)
-(0010,0020)
-(0010,0030)
"""


def pg_dump() -> str:
    db = connection.settings_dict
    pg_bin = os.environ["XNATLITE_TEST_PG_BIN"]
    out = subprocess.run([f"{pg_bin}/pg_dump", "--data-only", "-h", db["HOST"], "-p", str(db["PORT"]),
                          "-U", db["USER"], db["NAME"]], capture_output=True, text=True, timeout=120, check=True)
    return out.stdout


@pytest.mark.parametrize("script", [HASHING, REMOVING], ids=["hashes", "removes"])
def test_no_original_identifier_in_the_database_rest_answers_or_logs(site, project, admin_user, script, caplog,
                                                                     capfd):
    caplog.set_level(logging.DEBUG)
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = script
    site.save()
    study, series = generate_uid(), generate_uid()
    patient = {"PatientName": "Zzorigname^Zzgiven", "PatientID": "ZZORIGID42", "PatientBirthDate": "19020304"}
    files = [make_dataset(StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=1, InstanceNumber=i + 1,
                          **patient) for i in range(3)]
    originals = [study, series, *[str(ds.SOPInstanceUID) for ds in files], "Zzorigname", "Zzgiven",
                 "ZZORIGID42", "19020304", "1902-03-04"]
    params = {"PROJECT_ID": "PROJ1", "SUBJECT_ID": "SUBJ1", "EXPT_LABEL": "SESS1"}
    for ds in files:
        assert receive(ds, params=params).status == "stored"
    session = PrearchiveSession.objects.get()
    assert session.tag not in originals and session.tag.startswith("2.25.")
    client = Client()
    client.force_login(admin_user)
    answers = [client.get("/data/prearchive/projects?format=json"),
               client.get("/data/prearchive/projects/PROJ1?format=json"),
               client.get(f"/data/prearchive?tag={session.tag}&format=json")]
    PrearchiveSession.objects.filter(pk=session.pk).update(status=S.QUEUED_BUILDING)
    assert session_build(session_id=session.pk) == S.READY
    session.refresh_from_db()
    answers += [client.get(session.uri + "?format=json&document=true"), client.get(session.uri + "?format=xml"),
                client.get(f"/prearchive/{session.pk}/")]
    answers.append(client.get("/data/prearchive/projects/PROJ1?format=json"))
    session_archive_request(session=session, actor="admin")
    assert session_archive(session_id=session.pk) == "archived"
    record = ImageSession.objects.get(label="SESS1")
    assert record.study_instance_uid not in originals and record.study_instance_uid
    base = "/data/archive/projects/PROJ1/subjects/SUBJ1/experiments/SESS1"
    answers += [client.get(base + "?format=json"), client.get(base + "/files?format=json"),
                client.get("/data/projects/PROJ1?format=json"), client.get("/archive/PROJ1/sessions/SESS1/")]
    for answer in answers:
        assert answer.status_code == 200, (answer.request["PATH_INFO"], answer.status_code)
    redis_flush()  # the queued archive message (already run here) is not the database's

    dump = pg_dump()
    assert "SESS1" in dump and session.tag in dump  # the dump really holds the session
    rest = "\n".join(a.content.decode() for a in answers)
    assert "SESS1" in rest
    out, err = capfd.readouterr()
    places = {"database": dump, "REST": rest, "logs": caplog.text, "stdout/stderr": out + err}
    found = {where: [o for o in originals if o in text] for where, text in places.items()}
    assert found == {w: [] for w in places}
