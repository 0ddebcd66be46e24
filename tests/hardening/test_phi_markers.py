"""PHI stays out of side doors. Files whose patient values are unique markers go the whole way: the DICOM
receiver (a real process), the idle build and the archive (real worker and beat), with a project script that
removes them, plus the error cases (files refused at intake, an archive conflict, a project script failing
on a file). Then every log line (receiver, worker, beat at DEBUG, and this process's Django logging), every
task message in Redis (read while no worker consumes them), the audit, rejection and error fields in the
database and the URLs in the REST answers are searched for the markers: none may appear."""
from __future__ import annotations

import base64
import json
import logging
import os
import re
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.test import Client
from pydicom import dcmread
from pydicom.uid import generate_uid

from prearchive.models import IntakeRejection, PrearchiveFile, PrearchiveSession
from tests.conftest import redis_flush
from tests.dicom_factory import make_dataset
from xnatlite.models import AuditEvent, ImageSession, Project

from . import scu
from .conftest import beat, fast_site, free_port, receiver, tree_files, wait_until, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
S = PrearchiveSession.Status

PHI = {
    "PatientName": "ZZPHINAME^ZZPHIGIVEN", "PatientID": "ZZPHIID7731", "PatientBirthDate": "19011231",
    "OtherPatientIDs": "ZZPHIOTHERID", "OtherPatientNames": "ZZPHIALIAS^ZZPHIX", "PatientAddress": "ZZPHIADDR 9",
    "PatientMotherBirthName": "ZZPHIMOTHER", "PatientTelephoneNumbers": "ZZPHITEL555", "MilitaryRank": "ZZPHIRANK",
    "InstitutionName": "ZZPHIHOSPITAL", "ReferringPhysicianName": "ZZPHIDOCTOR",
}
NEEDLES = re.compile(rb"zzphi|19011231|1901-12-31|31/12/1901", re.IGNORECASE)
SCRIPT = """version "6.1"
(0010,0010) := subject
(0010,0020) := session
-(0010,0030)
-(0010,1000)
-(0010,1001)
-(0010,1040)
-(0010,1060)
-(0010,2154)
-(0010,1080)
-(0008,0080)
-(0008,0090)
(0008,1030) := project
"""
FAILING_SCRIPT = """version "6.1"
(0028,0010) := (0010,0010)
"""


def leaks(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "replace") if isinstance(blob, str) else blob
    return sorted({m.group(0).decode("latin-1") for m in NEEDLES.finditer(data)})


def study(*, project: str, subject: str, session: str, count: int) -> list:
    study_uid, series_uid = generate_uid(), generate_uid()
    return [make_dataset(StudyInstanceUID=study_uid, SeriesInstanceUID=series_uid, SeriesNumber=1,
                         InstanceNumber=i + 1, StudyDescription="ZZPHI study of ZZPHINAME",
                         PatientComments=f"Project:{project} Subject:{subject} Session:{session}", **PHI)
            for i in range(count)]


def hostile() -> list:
    """Files intake must refuse: their reasons must not quote the values."""
    bad_uid = make_dataset(**PHI)
    bad_uid.SOPInstanceUID = "ZZPHI^ID7731"
    bad_uid.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4"
    no_study = make_dataset(**PHI, StudyInstanceUID=None)
    del no_study.StudyInstanceUID
    bad_study = make_dataset(**PHI)
    bad_study.StudyInstanceUID = "ZZPHINAME^ZZPHIGIVEN"
    return [bad_uid, no_study, bad_study]


def redis_dump() -> bytes:
    """Every key and value in the broker's database, with Celery's base64 message bodies decoded."""
    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    out = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        values: list[bytes] = []
        if kind == b"list":
            values = client.lrange(key, 0, -1)
        elif kind == b"hash":
            values = [k + b" " + v for k, v in client.hgetall(key).items()]
        elif kind == b"zset":
            values = client.zrange(key, 0, -1)
        elif kind == b"set":
            values = list(client.smembers(key))
        elif kind == b"string":
            values = [client.get(key) or b""]
        out.append(key)
        for value in values:
            out.append(value)
            for body in re.findall(rb'"body": ?"([A-Za-z0-9+/=]+)"', value):
                out.append(base64.b64decode(body))
    return b"\n".join(out)


def urls_in(value) -> list[str]:
    found = []
    if isinstance(value, dict):
        for v in value.values():
            found += urls_in(v)
    elif isinstance(value, list):
        for v in value:
            found += urls_in(v)
    elif isinstance(value, str) and value.startswith(("/data", "/archive", "/prearchive", "http")):
        found.append(value)
    return found


@pytest.fixture
def phi_setup(project, member):
    fast_site(idle=2, sweep_ms=1000)
    project.anon_script, project.anon_script_enabled = SCRIPT, True
    project.save()
    broken = Project.objects.create(id="PROJ2", name="Project Two", prearchive_code=0,
                                    anon_script=FAILING_SCRIPT, anon_script_enabled=True)
    from xnatlite.models import ProjectMember

    ProjectMember.objects.create(project=broken, user=member, role="member")
    client = Client()
    client.force_login(member)
    return client


def test_no_phi_in_logs_task_messages_audit_errors_or_urls(phi_setup, fault_env, tmp_path, procs, caplog):
    client = phi_setup
    caplog.set_level(logging.DEBUG)
    env = dict(fault_env, LOG_LEVEL="DEBUG")
    redis_flush()
    port = free_port()
    scp = receiver(env, tmp_path / "receiver.log", port)
    procs.append(scp)

    # 1. Intake through the receiver, with no worker: the countdown messages wait in Redis.
    files = (study(project="PROJ1", subject="SUBJA", session="SESSA", count=12)
             + study(project="PROJ1", subject="SUBJB", session="SESSB", count=6)
             + study(project="PROJ2", subject="SUBJC", session="SESSC", count=6))
    bad = hostile()
    outcome = scu.Outcome()
    scu.send(files + bad, port=port, outcome=outcome)
    assert len(outcome.succeeded) == 24 and len(outcome.refused) == 3
    caplog.clear()  # what this process logged so far was the sender's (pydicom and pynetdicom as the SCU)
    from prearchive.services.intake import dicom_file_receive

    junk = Path(str(settings.UPLOAD_TMP_ROOT)) / "junk.dcm"
    junk.write_bytes(b"\x08\x00\x05\x00" + "ZZPHINAME^ZZPHIGIVEN 19011231".encode() * 40)
    assert not dicom_file_receive(path=junk, source="test").ok
    redis_before_build = redis_dump()
    assert b"prearchive.session_idle_check" in redis_before_build  # the messages were there to be read

    # 2. Build (worker and beat at DEBUG), then stop the worker so the archive requests wait in Redis.
    victim = worker(env, tmp_path / "worker1.log", name="w1", loglevel="DEBUG")
    procs.append(victim)
    procs.append(beat(env, tmp_path / "beat.log", loglevel="DEBUG"))
    wait_until(lambda: PrearchiveSession.objects.filter(status=S.READY).count() == 3, timeout=60,
               what="three READY sessions", procs=procs)
    victim.stop()
    sessions = {s.name: s for s in PrearchiveSession.objects.all()}
    raw = [p for p in tree_files(Path(settings.PREARCHIVE_ROOT)) if p.suffix == ".dcm"][0]
    assert str(dcmread(raw).PatientName) == PHI["PatientName"]  # the markers really went through

    responses = []
    for name, project_id, label in (("SESSA", "PROJ1", "SESSA"), ("SESSB", "PROJ1", "SESSA"),
                                    ("SESSC", "PROJ2", "SESSC")):
        response = client.post("/data/services/archive", {
            "src": sessions[name].uri, "overwrite": "none", "subject_ID": f"SUBJ{name[-1]}", "label": label,
            "async": "true"})
        responses.append(response)
        assert response.status_code == 200, response.content
    redis_queued = redis_dump()
    assert b"prearchive.session_archive" in redis_queued

    # 3. The archive jobs: one archived, one conflict, one script failure.
    procs.append(worker(env, tmp_path / "worker2.log", name="w2", loglevel="DEBUG"))
    wait_until(lambda: ImageSession.objects.filter(label="SESSA").exists()
               and PrearchiveSession.objects.filter(pk=sessions["SESSB"].pk, status=S.CONFLICT).exists()
               and PrearchiveSession.objects.filter(pk=sessions["SESSC"].pk, status=S.ERROR).exists(),
               timeout=90, what="archived, CONFLICT and ERROR", procs=procs)
    for proc in procs:
        proc.stop()

    # 4. REST answers: every URL they give.
    urls = [r.content.decode() for r in responses]
    for path in ("/data/prearchive/projects?format=json", "/data/prearchive/projects/PROJ1?format=json",
                 "/data/prearchive/projects/PROJ2?format=json", "/data/projects?format=json",
                 "/data/archive/projects/PROJ1/subjects/SUBJA/experiments/SESSA?format=json",
                 sessions["SESSB"].uri + "?format=json", sessions["SESSC"].uri + "?format=json"):
        response = client.get(path)
        assert response.status_code == 200, (path, response.status_code)
        urls.append(path)
        if "json" in response.get("Content-Type", ""):
            urls += urls_in(response.json())
        if response.has_header("Location"):
            urls.append(response["Location"])
    assert any("SESSA" in u for u in urls)

    # 5. Search.
    database = []
    for event in AuditEvent.objects.all():
        database.append(json.dumps([event.actor, event.action, event.project_id, event.subject_label,
                                    event.session_label, event.details], default=str))
    for rejection in IntakeRejection.objects.all():
        database.append(" ".join([rejection.reason_code, rejection.reason, rejection.source,
                                  rejection.study_instance_uid, rejection.sop_instance_uid]))
    for session in PrearchiveSession.objects.all():
        database.append(" ".join([session.error_message, session.name, session.subject, session.folder_name,
                                  json.dumps(session.document)]))
    assert IntakeRejection.objects.count() >= 4 and AuditEvent.objects.exists()
    assert PrearchiveSession.objects.get(pk=sessions["SESSB"].pk).error_message
    assert PrearchiveSession.objects.get(pk=sessions["SESSC"].pk).error_message
    places = {
        "receiver log": scp.text(), "worker logs": (tmp_path / "worker1.log").read_text() + (tmp_path / "worker2.log").read_text(),
        "beat log": (tmp_path / "beat.log").read_text(), "Django logging (this process)": caplog.text,
        "Redis before the build": redis_before_build, "Redis with the archive requests": redis_queued,
        "database": "\n".join(database), "REST URLs": "\n".join(urls),
    }
    assert leaks(PHI["PatientName"]) and leaks(b"x19011231x")  # the search itself works
    found = {place: leaks(text) for place, text in places.items() if leaks(text)}
    assert found == {}, f"PHI markers found: {found}"
    # And the archived copy is clean (the project script ran on every file).
    for path in tree_files(Path(settings.ARCHIVE_ROOT)):
        if path.suffix == ".dcm":
            assert leaks(path.read_bytes()) == [], path
    assert PrearchiveFile.objects.filter(session__name="SESSB").count() == 6
