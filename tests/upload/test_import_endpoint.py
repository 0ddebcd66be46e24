"""POST /data/services/import: XNAT's parameters, bodies and responses, with real archives and DICOM."""
from __future__ import annotations

import pytest

from prearchive.models import PrearchiveFile, PrearchiveSession
from tests.dicom_factory import make_dataset, write_dataset
from tests.upload.helpers import MEMBER, basic, leftovers, session_files, tgz_of, zip_of

URL = "/data/services/import"


@pytest.fixture
def zip_two_series(tmp_path):
    session_files(tmp_path / "s", series=2, per_series=3, PatientID="SUBJ01")
    return zip_of(tmp_path / "s", tmp_path / "session.zip", extra={"README.txt": b"not dicom"})


def post_raw(client, path, *, query="", content_type="application/zip", auth=MEMBER, **extra):
    return client.post(f"{URL}{query}", data=path.read_bytes() if path else b"", content_type=content_type,
                       **basic(*auth), **extra)


def test_raw_zip_body_with_xnat_params_answers_a_uri_list(client, member, zip_two_series, settings):
    r = post_raw(client, zip_two_series, query="?import-handler=DICOM-zip&PROJECT_ID=PROJ1&SUBJECT_ID=S1"
                                                "&EXPT_LABEL=S1_MR1")
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/uri-list")
    body = r.content.decode()
    assert body.endswith("\r\n")
    [uri] = body.split("\r\n")[:-1]
    session = PrearchiveSession.objects.get()
    assert uri == session.uri and uri.startswith("/data/prearchive/projects/PROJ1/")
    assert (session.project_id, session.subject, session.name) == ("PROJ1", "S1", "S1_MR1")
    assert PrearchiveFile.objects.filter(session=session).count() == 6
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_lower_case_aliases_and_text_plain(client, member, zip_two_series):
    r = post_raw(client, zip_two_series, query="?project=PROJ1&subject=S2&session=S2_MR1&format=text")
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain")
    session = PrearchiveSession.objects.get()
    assert r.content.decode() == session.uri
    assert (session.subject, session.name) == ("S2", "S2_MR1")


def test_multipart_tgz_with_form_fields(client, member, tmp_path, settings):
    session_files(tmp_path / "s", series=1, per_series=4)
    tgz = tgz_of(tmp_path / "s", tmp_path / "session.tar.gz")
    with open(tgz, "rb") as fh:
        r = client.post(URL, {"import-handler": "DICOM-zip", "PROJECT_ID": "PROJ1", "EXPT_LABEL": "MP1",
                              "file": fh}, **basic(*MEMBER))
    assert r.status_code == 200, r.content
    assert PrearchiveSession.objects.get().name == "MP1"
    assert PrearchiveFile.objects.count() == 4
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_gradual_dicom_is_chosen_for_application_dicom(client, member, tmp_path):
    path = write_dataset(make_dataset(), tmp_path / "one.dcm")
    r = post_raw(client, path, query="?PROJECT_ID=PROJ1&SUBJECT_ID=G1&EXPT_LABEL=G1_MR",
                 content_type="application/dicom")
    assert r.status_code == 200, r.content
    assert PrearchiveFile.objects.count() == 1
    assert r.content.decode().strip() == PrearchiveSession.objects.get().uri


def test_dest_commits_and_builds_at_once(client, member, zip_two_series):
    r = post_raw(client, zip_two_series, query="?dest=/prearchive/projects/PROJ1&SUBJECT_ID=S3&EXPT_LABEL=S3_MR")
    assert r.status_code == 200, r.content
    session = PrearchiveSession.objects.get()
    assert session.status == PrearchiveSession.Status.READY
    assert session.built_at is not None


def test_alias_resolves_to_the_project(client, member, zip_two_series, project):
    from xnatlite.models import ProjectAlias

    ProjectAlias.objects.create(project=project, alias="P1ALIAS")
    r = post_raw(client, zip_two_series, query="?project=P1ALIAS&subject=S4&session=S4_MR")
    assert r.status_code == 200, r.content
    assert PrearchiveSession.objects.get().project_id == "PROJ1"


# ------------------------------------------------------------------ bad input: clear error, nothing stored


def nothing_stored(settings):
    assert PrearchiveSession.objects.count() == 0
    assert PrearchiveFile.objects.count() == 0
    assert leftovers(settings.PREARCHIVE_ROOT) == []
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_unknown_handler(client, member, zip_two_series, settings):
    r = post_raw(client, zip_two_series, query="?import-handler=FOO&PROJECT_ID=PROJ1")
    assert r.status_code == 404
    assert r.content.decode().strip() == "Unknown importer implementation specified: FOO"
    nothing_stored(settings)


def test_unknown_project(client, member, zip_two_series, settings):
    r = post_raw(client, zip_two_series, query="?PROJECT_ID=NOPE")
    assert r.status_code == 404
    assert r.content.decode().strip() == "Unknown project: NOPE"
    nothing_stored(settings)


def test_user_without_upload_rights(client, collaborator, zip_two_series, settings):
    r = post_raw(client, zip_two_series, query="?PROJECT_ID=PROJ1", auth=("carla", "carla-pass-1"))
    assert r.status_code == 403
    assert "permission to upload to project PROJ1" in r.content.decode()
    nothing_stored(settings)


def test_anonymous_caller(client, project, zip_two_series, settings):
    r = client.post(f"{URL}?PROJECT_ID=PROJ1", data=zip_two_series.read_bytes(), content_type="application/zip")
    assert r.status_code == 401
    nothing_stored(settings)


def test_empty_body(client, member, settings):
    r = post_raw(client, None, query="?PROJECT_ID=PROJ1")
    assert r.status_code == 400
    assert "empty" in r.content.decode()
    nothing_stored(settings)


def test_zip_slip(client, member, tmp_path, settings):
    import zipfile

    dcm = write_dataset(make_dataset(), tmp_path / "f.dcm").read_bytes()
    with zipfile.ZipFile(tmp_path / "slip.zip", "w") as zf:
        zf.writestr("good.dcm", dcm)
        zf.writestr("../../../tmp/evil.dcm", dcm)
    r = post_raw(client, tmp_path / "slip.zip", query="?PROJECT_ID=PROJ1")
    assert r.status_code == 400
    assert "unsafe path" in r.content.decode()
    nothing_stored(settings)


def test_zip_bomb(client, member, bomb_zip, settings):
    r = post_raw(client, bomb_zip, query="?PROJECT_ID=PROJ1")
    assert r.status_code == 400
    assert "zip bomb" in r.content.decode()
    nothing_stored(settings)


def test_truncated_zip(client, member, zip_two_series, tmp_path, settings):
    data = zip_two_series.read_bytes()
    (tmp_path / "cut.zip").write_bytes(data[: len(data) * 2 // 3])
    r = post_raw(client, tmp_path / "cut.zip", query="?PROJECT_ID=PROJ1")
    assert r.status_code == 400
    assert "truncated or corrupt" in r.content.decode()
    nothing_stored(settings)


def test_two_files_in_one_multipart_request(client, member, zip_two_series, settings):
    with open(zip_two_series, "rb") as a, open(zip_two_series, "rb") as b:
        r = client.post(f"{URL}?PROJECT_ID=PROJ1", {"a": a, "b": b}, **basic(*MEMBER))
    assert r.status_code == 400
    assert r.content.decode().strip() == "Importer is limited to one uploaded resource at a time."
    nothing_stored(settings)


def test_non_dicom_only_archive_is_refused_with_xnats_message(client, member, tmp_path, settings):
    """Issue 14 item 10: XNAT refuses it ("did not include parseable files"), never 200 with an empty body."""
    import zipfile

    with zipfile.ZipFile(tmp_path / "docs.zip", "w") as zf:
        zf.writestr("a.txt", "hello")
        zf.writestr("fake.dcm", b"\x00" * 128 + b"DICM" + b"\xff" * 20)  # a preamble, then garbage
    for handler in ("DICOM-zip", "SI"):
        r = post_raw(client, tmp_path / "docs.zip", query=f"?PROJECT_ID=PROJ1&import-handler={handler}")
        assert r.status_code == 400, r.content
        assert r.content.decode() == "Upload did not include parseable files for session generation.\n"
    nothing_stored(settings)


def test_an_archive_whose_files_are_all_filtered_is_not_refused_and_leaves_no_session(
        client, member, tmp_path, settings, site):
    from prearchive.models import IntakeRejection

    site.enable_sitewide_series_import_filter = True
    site.sitewide_series_import_filter_mode = "blacklist"
    site.sitewide_series_import_filter = "LOCALIZER\n"
    site.save()
    session_files(tmp_path / "s", series=1, per_series=3, SeriesDescription="localizer")
    r = post_raw(client, zip_of(tmp_path / "s", tmp_path / "loc.zip"), query="?PROJECT_ID=PROJ1")
    assert r.status_code == 200 and r.content == b""
    assert not PrearchiveSession.objects.exists()
    assert IntakeRejection.objects.filter(reason_code="filtered").count() == 3


def test_dest_archive_hands_the_built_session_to_the_archive_and_answers_its_archive_uri(
        client, member, zip_two_series, project):
    r = post_raw(client, zip_two_series, query="?dest=/archive/projects/PROJ1&SUBJECT_ID=AA1&EXPT_LABEL=AA1_MR")
    assert r.status_code == 200, r.content
    assert r.content.decode() == "/data/archive/projects/PROJ1/subjects/AA1/experiments/AA1_MR\r\n"
    session = PrearchiveSession.objects.get()
    assert session.status == PrearchiveSession.Status.QUEUED_ARCHIVING
    assert session.autoarchive == 4


def test_server_fault_is_a_clear_503_not_a_traceback(client, member, zip_two_series, monkeypatch, settings):
    from prearchive.services import intake

    def broken(**kwargs):
        kwargs["path"].unlink()
        raise intake.IntakeError("The prearchive storage failed (No space left on device).")

    monkeypatch.setattr(intake, "dicom_file_receive", broken)
    r = post_raw(client, zip_two_series, query="?PROJECT_ID=PROJ1")
    assert r.status_code == 503
    assert "No space left on device" in r.content.decode() and "Traceback" not in r.content.decode()
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_files_thrown_away_get_a_422_that_says_which_and_why(client, member, tmp_path, settings):
    """Issue 16 item 10: a zip whose second file has no Study UID and whose fourth cannot be read: the
    answer is not 2xx, names them by position (never by a header value) with the reason, and lists where
    the others went; the others are stored."""
    from tests.dicom_factory import make_dataset as make

    folder = tmp_path / "mixed"
    folder.mkdir()
    write_dataset(make(PatientName="Doe^Jane", StudyInstanceUID="1.2.3.9"), folder / "a1.dcm")
    no_uid = make(PatientName="Doe^Jane")
    del no_uid.StudyInstanceUID
    write_dataset(no_uid, folder / "a2.dcm")
    write_dataset(make(PatientName="Doe^Jane", StudyInstanceUID="1.2.3.9"), folder / "a3.dcm")
    broken = write_dataset(make(PatientName="Doe^Jane", StudyInstanceUID="1.2.3.9"), folder / "a4.dcm")
    broken.write_bytes(broken.read_bytes()[:200])  # the header cut short
    (folder / "README.txt").write_text("notes")  # not DICOM at all: skipped quietly, as XNAT does
    archive = zip_of(folder, tmp_path / "mixed.zip")
    r = post_raw(client, archive, query="?import-handler=DICOM-zip&PROJECT_ID=PROJ1&SUBJECT_ID=M1&EXPT_LABEL=M1_MR")
    body = r.content.decode()
    assert r.status_code == 422, body
    assert "file 2: The file has no StudyInstanceUID." in body
    assert "file 4:" in body
    assert "README" not in body and "Doe" not in body and "a2.dcm" not in body
    session = PrearchiveSession.objects.get(tag="1.2.3.9")
    assert session.uri in body
    assert PrearchiveFile.objects.filter(session=session).count() == 2


def test_gradual_dicom_file_thrown_away_is_not_a_200(client, member, tmp_path):
    from tests.dicom_factory import make_dataset as make

    ds = make()
    del ds.SOPInstanceUID
    path = write_dataset(ds, tmp_path / "no_sop.dcm")
    r = post_raw(client, path, query="?PROJECT_ID=PROJ1&SUBJECT_ID=G2&EXPT_LABEL=G2_MR",
                 content_type="application/dicom")
    assert r.status_code == 422, r.content
    assert "file 1: The file has no SOPInstanceUID." in r.content.decode()
    assert PrearchiveFile.objects.count() == 0
