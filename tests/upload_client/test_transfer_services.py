"""The transfer's life in services: inspection before import, the import with scripts, variables, scan
choice and pixel templates, date verification, and clean-up of abandoned or refused uploads."""
from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest
from django.core.exceptions import ValidationError

from prearchive.models import PrearchiveFile, PrearchiveSession
from upload.client import importer, services
from upload.client.models import Transfer
from xnatlite.models import AuditEvent, Project, Subject

from .helpers import PROJECT_SCRIPT, pixel_values, session_files, zip_of

pytestmark = pytest.mark.django_db


def files_under(root) -> list[Path]:
    return [p for p in Path(root).rglob("*") if p.is_file()]


@pytest.fixture
def inspected(tmp_path, member, settings):
    """A transfer of two sessions (MR, 2 scans x 2 files each), inspected and waiting."""
    def make(project_changes=None, sessions=2):
        Project.objects.filter(pk="PROJ1").update(**(project_changes or {}))
        paths = []
        for n in range(sessions):
            paths += session_files(tmp_path / f"src{n}", study_date=f"2024011{n + 5}")
        archive = zip_of(paths, tmp_path / "up.zip")
        transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="up.zip",
                                            size=archive.stat().st_size)
        services.transfer_receive(transfer=transfer, stream=io.BytesIO(archive.read_bytes()), length=None)
        assert services.transfer_inspect(transfer_id=transfer.pk) == Transfer.Status.AWAITING
        return Transfer.objects.select_related("project").get(pk=transfer.pk)
    return make


def test_inspection_shows_phi_free_summaries_and_imports_nothing(inspected, settings):
    transfer = inspected()
    text = str(transfer.inspection)
    assert "Doe" not in text and "PID0001" not in text
    first = transfer.inspection["sessions"][0]
    assert first["study_date"] == "2024-01-15" and first["modalities"] == ["MR"] and first["files"] == 4
    assert [s["description"] for s in first["scans"]] == ["T1 MPRAGE", "T2 FLAIR"]
    assert PrearchiveSession.objects.count() == 0
    assert files_under(settings.PREARCHIVE_ROOT) == []
    assert AuditEvent.objects.filter(details__icontains="Doe").count() == 0


def test_import_applies_variables_leaves_out_a_scan_and_blanks_pixels(inspected, member, settings):
    transfer = inspected({"anon_script": PROJECT_SCRIPT, "anon_script_enabled": True}, sessions=1)
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "NEW01", "label": "NEW01_MR", "scans": ["1"],
        "variables": {"trial": "TRIAL-42"}}], "pixel": {"s1/1": [[2, 3, 10, 8]], "s1/2": [[0, 0, 4, 4]]}})
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    transfer.refresh_from_db()
    assert transfer.files_done == 2 and not Path(transfer.work_dir).exists()
    assert Subject.objects.filter(project_id="PROJ1", label="NEW01").exists()
    session = PrearchiveSession.objects.get()
    assert (session.name, session.subject, session.status) == ("NEW01_MR", "NEW01", "READY")
    rows = list(PrearchiveFile.objects.filter(session=session))
    assert {r.scan_id for r in rows} == {"1"}
    for row in rows:
        ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / session.relative_dir / row.relative_path)
        assert ds.StudyDescription == "TRIAL-42" and ds.PatientID == "NEW01_MR"
        assert ds.BurnedInAnnotation == "NO"
        pixels = ds.pixel_array
        assert (pixels[3:8, 2:10] == 0).all()
        inside = pixels != pixels  # all False
        inside[3:8, 2:10] = True
        assert (pixels[~inside] == pixel_values(32, int(ds.InstanceNumber))[~inside]).all()
    audit = AuditEvent.objects.get(action="upload_client_pixel_template")
    assert audit.details["rectangles"] == [[2, 3, 10, 8]] and audit.session_label == "NEW01_MR"


def test_hidden_variables_and_unknown_variables_are_refused(inspected, member):
    transfer = inspected({"anon_script": PROJECT_SCRIPT, "anon_script_enabled": True}, sessions=1)
    conf = services.uploader_settings(project=transfer.project)
    assert [v["name"] for v in conf["variables"]] == ["trial"]
    assert conf["allow_bulk_upload"] is False  # custom variables: one session at a time
    with pytest.raises(ValidationError, match="internal"):
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "S", "label": "S_MR", "variables": {"internal": "x"}}]})


def test_new_subject_refused_when_the_project_does_not_allow_it(inspected, member):
    transfer = inspected({"allow_create_subject": False}, sessions=1)
    with pytest.raises(ValidationError, match="does not allow new subjects"):
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "NOPE", "label": "NOPE_MR"}]})
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.AWAITING


def test_wrong_visit_date_keeps_the_transfer_names_the_session_and_allows_a_correction(inspected, member):
    # Issue 15: a wrong date no longer throws the upload away; the disagreeing session is named, each try audited.
    transfer = inspected({"require_date": True}, sessions=1)
    with pytest.raises(importer.VisitDateMismatch, match="does not match") as refused:
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "S1", "label": "S1_MR", "visit_date": "2024-01-16"}]})
    assert refused.value.wrong == ["s1"] and refused.value.attempts_left == importer.MAX_DATE_ATTEMPTS - 1
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.AWAITING and transfer.date_attempts == 1
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "S1", "label": "S1_MR", "visit_date": "2024-01-15"}]})
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.IMPORTING
    event = AuditEvent.objects.get(action="upload_client_date_refused")
    assert event.details["attempt"] == 1 and event.details["wrong_sessions"] == ["s1"]


def test_wrong_visit_date_too_often_is_refused_and_nothing_remains(inspected, member, settings):
    transfer = inspected({"require_date": True}, sessions=1)
    for attempt in range(1, importer.MAX_DATE_ATTEMPTS + 1):
        with pytest.raises(ValidationError, match="does not match"):
            importer.transfer_confirm(transfer=Transfer.objects.get(pk=transfer.pk), user=member, data={"sessions": [{
                "key": "s1", "subject": "S1", "label": "S1_MR", "visit_date": "2024-01-16"}]})
        if attempt < importer.MAX_DATE_ATTEMPTS:
            assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.AWAITING
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FAILED and "does not match" in transfer.error
    assert files_under(settings.UPLOAD_TMP_ROOT) == [] and files_under(settings.PREARCHIVE_ROOT) == []
    events = AuditEvent.objects.filter(action="upload_client_date_refused")
    assert events.count() == importer.MAX_DATE_ATTEMPTS
    details = str([e.details for e in events])  # neither the date given nor the one in the files
    assert not any(d in details for d in ("2024-01-16", "20240116", "2024-01-15", "20240115")), details


def test_missing_date_is_asked_for_and_right_date_proceeds(inspected, member):
    transfer = inspected({"require_date": True}, sessions=1)
    with pytest.raises(ValidationError, match="requires the visit date"):
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "S1", "label": "S1_MR"}]})
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "S1", "label": "S1_MR", "visit_date": "2024-01-15"}]})
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.IMPORTING


def test_dont_know_the_dates_proceeds_and_is_audited(inspected, member):
    transfer = inspected({"require_date": True}, sessions=2)
    importer.transfer_confirm(transfer=transfer, user=member, data={"dates_unknown": True, "sessions": [
        {"key": "s1", "subject": "S1", "label": "S1_MR"}, {"key": "s2", "subject": "S2", "label": "S2_MR"}]})
    event = AuditEvent.objects.get(action="upload_client_dates_unknown")
    assert event.actor == "mike" and event.details["sessions"] == ["S1_MR", "S2_MR"]


def test_abandoned_upload_is_removed_by_the_clean_up(inspected, settings):
    from django.core.management import call_command

    transfer = inspected(sessions=1)
    assert files_under(settings.UPLOAD_TMP_ROOT)
    call_command("cleanup_transfers", "--older-than", "3600")
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.AWAITING  # not old enough
    call_command("cleanup_transfers", "--older-than", "0")
    transfer.refresh_from_db()
    assert transfer.status == Transfer.Status.FAILED and "Abandoned" in transfer.error
    assert files_under(settings.UPLOAD_TMP_ROOT) == []
    assert files_under(settings.PREARCHIVE_ROOT) == [] and PrearchiveSession.objects.count() == 0


def test_refused_archive_leaves_nothing(member, settings, tmp_path):
    transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="bad.zip")
    services.transfer_receive(transfer=transfer, stream=io.BytesIO(b"PK\x03\x04 truncated"), length=None)
    assert services.transfer_inspect(transfer_id=transfer.pk) == Transfer.Status.FAILED
    transfer.refresh_from_db()
    assert "truncated or corrupt" in transfer.error
    assert files_under(settings.UPLOAD_TMP_ROOT) == []


def test_outsider_cannot_create_a_transfer(outsider):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        services.transfer_create(user=outsider, project_id="PROJ1", file_name="x.zip")


SEED_004_SCRIPT = '''(0008,1030) := project
(0010,0010) := subject
(0010,0020) := session
session := makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]
'''


def test_pet_session_with_tracer_and_the_seed_script_label(tmp_path, member, settings):
    """A PET-CT session: the seed 004 project script (with makeSessionLabel, an uploader-only function)
    suggests S9_v00_pet, runs with the chosen label, and the tracer from the site list is kept."""
    Project.objects.filter(pk="PROJ1").update(anon_script=SEED_004_SCRIPT, anon_script_enabled=True)
    paths = session_files(tmp_path / "pt", modality="PT", series=((1, "PET AC", 2),))
    archive = zip_of(paths, tmp_path / "pet.zip")
    transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="pet.zip")
    services.transfer_receive(transfer=transfer, stream=io.BytesIO(archive.read_bytes()), length=None)
    services.transfer_inspect(transfer_id=transfer.pk)
    transfer = Transfer.objects.select_related("project").get(pk=transfer.pk)
    assert transfer.inspection["sessions"][0]["is_pet"]
    label = services.suggestions(transfer=transfer, subjects={"s1": "S9"})["s1"]["label"]
    assert label == "S9_v00_pet"
    with pytest.raises(ValidationError, match="not one of this project's PET tracers"):
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "S9", "label": label, "tracer": "NOPE"}]})
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "S9", "label": label, "tracer": "FDG"}]})
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    session = PrearchiveSession.objects.get()
    assert (session.name, session.pet_tracer) == ("S9_v00_pet", "FDG")
    row = PrearchiveFile.objects.filter(session=session).first()
    ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / session.relative_dir / row.relative_path)
    assert (str(ds.PatientName), ds.PatientID, ds.StudyDescription) == ("S9", "S9_v00_pet", "PROJ1")


def test_views_answer_json_errors_never_a_server_error(client, member, outsider, inspected):
    transfer = inspected(sessions=1)
    url = f"/upload/client/t/{transfer.pk}/"
    assert client.get(url + "state").status_code == 401
    client.force_login(outsider)
    assert client.get(url + "state").status_code == 404
    assert client.post("/upload/client/t/", {"project": "PROJ1"}, content_type="application/json").status_code == 403
    client.force_login(member)
    r = client.post(url + "confirm", "not json", content_type="application/json")
    assert r.status_code == 400 and "JSON" in r.json()["error"]
    r = client.post(url + "confirm", {"sessions": [{"key": "s7", "subject": "A", "label": "A"}]},
                    content_type="application/json")
    assert r.status_code == 400 and "no session 's7'" in r.json()["error"]
    full = client.get(url + "state?full=1").json()
    assert full["inspection"]["sessions"][0]["key"] == "s1" and "suggestions" in full
    assert "inspection" not in client.get(url + "state").json()
    png = client.get(url + "frame/s1/1.png")
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    assert client.get(url + "frame/s1/99.png").status_code == 400
    assert client.post(url + "cancel").status_code == 200
    assert client.get(url + "frame/s1/1.png").status_code == 400


def test_a_stalled_upload_is_cleaned_and_the_clean_up_is_scheduled(member, settings,
                                                                   django_capture_on_commit_callbacks):
    from django_celery_beat.models import PeriodicTask

    with django_capture_on_commit_callbacks(execute=True):
        transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="big.zip", size=10)
    assert PeriodicTask.objects.get(name="Uploader transfer clean-up").task == "upload.client.transfers_cleanup"
    (Path(transfer.work_dir) / "upload.bin").write_bytes(b"half an archive")
    orphan = services.transfers_root() / "not-a-transfer"
    orphan.mkdir()
    (orphan / "x.dcm").write_bytes(b"x")
    import os
    import time

    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    assert services.transfers_cleanup(older_than=0) == {"abandoned": 1, "removed": 1}
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.FAILED
    assert files_under(settings.UPLOAD_TMP_ROOT) == []


def test_the_uploader_pass_echoes_into_the_session_record_not_stdout_or_logs(inspected, member, capfd, caplog):
    import logging

    from prearchive.models import SessionNote

    caplog.set_level(logging.DEBUG)
    script = PROJECT_SCRIPT + 'echo (0008,0020)\necho format["Study of {0}", (0010,0010)]\n'
    transfer = inspected({"anon_script": script, "anon_script_enabled": True}, sessions=1)
    names = sorted(str(pydicom.dcmread(p).StudyDate) for p in files_under(transfer.work_dir) if p.suffix == ".dcm")
    assert names == ["20240115"] * 4
    capfd.readouterr()
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "NEW01", "label": "NEW01_MR", "scans": ["1", "2"],
        "variables": {"trial": "T"}}]})
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    out, err = capfd.readouterr()
    for name in names:
        assert name not in out + err + caplog.text
    session = PrearchiveSession.objects.get()
    notes = SessionNote.objects.filter(session=session, origin="uploader")
    assert sorted(notes.values_list("text", flat=True)) == names + ["Study of NEW01"] * 4


def test_an_enabled_but_empty_site_script_marks_the_files_as_intake_does(inspected, member, settings, site):
    """Issue 14 item 9: the uploader's pass adds the (0012,0064) item an enabled empty site script adds."""
    site.enable_sitewide_anonymization_script = True
    site.sitewide_anonymization_script = ""
    site.save()
    transfer = inspected(sessions=1)
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "E01", "label": "E01_MR", "scans": ["1"], "variables": {}}]})
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    session = PrearchiveSession.objects.get()
    rows = list(PrearchiveFile.objects.filter(session=session))
    assert rows
    for row in rows:
        ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / session.relative_dir / row.relative_path)
        items = ds[0x00120064].value
        assert len(items) == 1 and items[0].CodingSchemeDesignator == "XNAT"
        assert items[0].CodeMeaning.startswith("XNAT DicomEdit")


SEED_002_SCRIPT = "(0008,1030) := my_var\n"  # seed 002, verbatim: a DicomEdit 4.2 script with a user input
SEED_000_VISIT = 'version "6.1"\n(0008,1030) := visit\n'  # seed 000: scripts may use the upload's visit


def test_seed_002_my_var_is_asked_for_and_its_value_reaches_the_script(inspected, member, settings, site):
    from upload.client.services import uploader_settings

    Project.objects.filter(pk="PROJ1").update(anon_script=SEED_002_SCRIPT, anon_script_enabled=True)
    conf = uploader_settings(project=Project.objects.get(pk="PROJ1"))
    assert conf["script_error"] in ("", None)
    assert [v["name"] for v in conf["variables"]] == ["my_var"]
    transfer = inspected(sessions=1)
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "V01", "label": "V01_MR", "variables": {"my_var": "typed by the user"}}]})
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    session = PrearchiveSession.objects.get()
    for row in PrearchiveFile.objects.filter(session=session):
        ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / session.relative_dir / row.relative_path)
        assert ds.StudyDescription == "typed by the user"


def test_seed_000_visit_is_set_from_the_uploads_visit(inspected, member, settings, site):
    from upload.client.services import uploader_settings

    Project.objects.filter(pk="PROJ1").update(anon_script=SEED_000_VISIT, anon_script_enabled=True)
    assert uploader_settings(project=Project.objects.get(pk="PROJ1"))["variables"] == []  # not asked: supplied
    transfer = inspected(sessions=1)
    with pytest.raises(ValidationError):
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "V02", "label": "V02_MR", "visit": "bad visit!"}]})
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "V02", "label": "V02_MR", "visit": "visit_3"}]})
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    session = PrearchiveSession.objects.get()
    assert session.visit == "visit_3"
    row = PrearchiveFile.objects.filter(session=session).first()
    ds = pydicom.dcmread(Path(settings.PREARCHIVE_ROOT) / session.relative_dir / row.relative_path)
    assert ds.StudyDescription == "visit_3"


def _peak_rss_reset() -> int:
    """Reset this process's peak resident size to the current one (Linux: 5 > clear_refs), return it."""
    Path("/proc/self/clear_refs").write_text("5")
    return _peak_rss()


def _peak_rss() -> int:
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024


@pytest.mark.slow
def test_a_deflate_bomb_in_an_uploader_archive_is_unreadable_without_the_memory(member, settings, tmp_path):
    """Issue 16 item 6 on the uploader page: its inspection used pydicom, which inflates a Deflated file
    whole (1 GiB for this 1 MB file); it now reads through intake's capped header reader."""
    from tests.dicom_factory import deflated_bomb

    paths = session_files(tmp_path / "src")
    paths.append(deflated_bomb(tmp_path / "src" / "bomb.dcm"))
    archive = zip_of(paths, tmp_path / "up.zip")
    transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="up.zip",
                                        size=archive.stat().st_size)
    with archive.open("rb") as stream:
        services.transfer_receive(transfer=transfer, stream=stream, length=None)
    before = _peak_rss_reset()
    assert services.transfer_inspect(transfer_id=transfer.pk) == Transfer.Status.AWAITING
    assert _peak_rss() - before < 200 * 1024 * 1024
    transfer.refresh_from_db()
    assert transfer.inspection["sessions"][0]["files"] == len(paths) - 1
    assert transfer.inspection["unreadable"] == 1


def test_series_the_import_filter_drops_are_marked_left_out_and_counted(inspected, member):
    """Issue 15 item 3: the project's filter (the function intake uses) marks scan 2 "will be filtered"; it
    cannot be chosen, is left out, and the done transfer counts its files as filtered."""
    transfer = inspected({"series_import_filter_enabled": True, "series_import_filter_mode": "blacklist",
                          "series_import_filter": "FLAIR"}, sessions=1)
    scans = {s["id"]: s for s in transfer.inspection["sessions"][0]["scans"]}
    assert (scans["1"]["will_be_filtered"], scans["2"]["will_be_filtered"]) == (False, True)
    assert scans["2"]["filtered"] == 2 and transfer.inspection["sessions"][0]["filtered"] == 2
    with pytest.raises(ValidationError, match="will be filtered"):
        importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
            "key": "s1", "subject": "F01", "label": "F01_MR", "scans": ["1", "2"]}]})
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [{
        "key": "s1", "subject": "F01", "label": "F01_MR"}]})
    transfer.refresh_from_db()
    assert transfer.files_total == 2 and services.transfer_state(transfer=transfer)["filtered"] == 2
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE
    transfer.refresh_from_db()
    state = services.transfer_state(transfer=transfer)
    assert (state["files_done"], state["files_total"], state["filtered"]) == (2, 2, 2)
    assert {r.scan_id for r in PrearchiveFile.objects.all()} == {"1"}
    assert AuditEvent.objects.get(action="upload_client_import").details["filtered"] == 2


def test_labels_count_visits_per_subject_and_the_bulk_rows_tell_patients_apart(tmp_path, member):
    """Issue 15 item 3: with the seed's v## scheme and no subject typed yet, three patients get no label
    (not _v00_mr, _v01_mr, _v02_mr); once typed, the visit counts per subject, keeping what other rows show."""
    Project.objects.filter(pk="PROJ1").update(
        default_session_labeling_scheme='makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]')
    paths = []
    for n, (name, pid) in enumerate((("Doe^Jane", "P-1"), ("Roe^Rick", "P-2"), ("Poe^Edgar", "P-3"))):
        paths += session_files(tmp_path / f"patient{n}", series=((1, "T1", 1),), PatientName=name, PatientID=pid,
                               StudyDescription=f"Brain {n}")
    archive = zip_of(paths, tmp_path / "three.zip")
    transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="three.zip", size=0)
    services.transfer_receive(transfer=transfer, stream=io.BytesIO(archive.read_bytes()), length=None)
    services.transfer_inspect(transfer_id=transfer.pk)
    transfer = Transfer.objects.select_related("project").get(pk=transfer.pk)
    assert "Roe" not in str(transfer.inspection) and "P-2" not in str(transfer.inspection)  # the database
    assert [s["study_description"] for s in transfer.inspection["sessions"]] == ["Brain 0", "Brain 1", "Brain 2"]
    shown = services.sessions_shown(transfer=transfer)
    assert [(v["patient_name"], v["patient_id"], v["folders"]) for v in shown.values()] == [
        ("Doe Jane", "P-1", ["data/patient0"]), ("Roe Rick", "P-2", ["data/patient1"]),
        ("Poe Edgar", "P-3", ["data/patient2"])]
    assert [v["label"] for v in services.suggestions(transfer=transfer).values()] == ["", "", ""]
    both = services.suggestions(transfer=transfer, subjects={"s1": "A", "s2": "A", "s3": "B"})
    assert [v["label"] for v in both.values()] == ["A_v00_mr", "A_v01_mr", "B_v00_mr"]
    # s2 was given A first (A_v00_mr on the page); then s1 gets A: the next visit, not a duplicate
    later = services.suggestions(transfer=transfer, subjects={"s1": "A", "s2": "A", "s3": ""},
                                 labels_kept={"s2": "A_v00_mr", "s3": ""})
    assert later["s1"]["label"] == "A_v01_mr" and later["s2"]["label"] == "A_v00_mr"


def test_the_pixel_editor_shows_the_frame_chosen_over_the_scans_files(tmp_path, member):
    """Issue 15 item 8: frame N counts over the scan's files in instance order (a 1-frame file, then a
    3-frame one); each frame's own bright corner shows where it came from; a frame out of range is a 400."""
    import numpy as np
    from PIL import Image

    from tests.dicom_factory import make_dataset, write_dataset

    study, series = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    paths = []
    for instance, frames in ((1, 1), (2, 3)):
        data = np.zeros((frames, 16, 16), dtype=np.uint16)
        for f in range(frames):
            spot = instance - 1 + f  # file 1: spot 0; file 2: spots 1, 2, 3 (its frames 1..3)
            data[f, spot * 4:spot * 4 + 4, 0:4] = 4000
        ds = make_dataset(rows=16, columns=16, StudyInstanceUID=study, SeriesInstanceUID=series, SeriesNumber=1,
                          InstanceNumber=instance)
        if frames > 1:
            ds.NumberOfFrames = frames
        ds.PixelData = data.tobytes()
        paths.append(write_dataset(ds, tmp_path / "src" / f"{instance}.dcm"))
    archive = zip_of(paths, tmp_path / "frames.zip")
    transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="frames.zip", size=0)
    services.transfer_receive(transfer=transfer, stream=io.BytesIO(archive.read_bytes()), length=None)
    services.transfer_inspect(transfer_id=transfer.pk)
    transfer = Transfer.objects.select_related("project").get(pk=transfer.pk)
    assert transfer.inspection["sessions"][0]["scans"][0]["frames"] == 4

    def bright_rows(frame):
        png = importer.frame_png(transfer=transfer, key="s1", scan_id="1", frame=frame)
        image = np.asarray(Image.open(io.BytesIO(png)))
        return sorted({int(r) // 4 for r in np.nonzero(image[:, 0] > 128)[0]})

    assert [bright_rows(n) for n in (1, 2, 3, 4)] == [[0], [1], [2], [3]]
    for bad in (0, 5):
        with pytest.raises(ValidationError, match="4 frame"):
            importer.frame_png(transfer=transfer, key="s1", scan_id="1", frame=bad)
