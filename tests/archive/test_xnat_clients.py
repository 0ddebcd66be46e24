"""XNAT's two Python clients from PyPI, used exactly as their documentation shows, against a live xnatlite
holding one archived and one prearchived session: xnatpy (``xnat``) builds its model from /xapi/schemas and
walks projects → subjects → experiments → scans → resources → files; pyxnat walks the same through
``select``. File bytes and zip downloads are read back as DICOM; a subject created by each client is listed
by the other."""
from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from pydicom import dcmread

from tests.archive.conftest import ready_session, send_study
from tests.upload.helpers import session_files, zip_of
from xnatlite.models import ImageSession, Project, ProjectMember, Subject

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

MR_HEADERS = {"RepetitionTime": 2300, "EchoTime": 2.98, "InversionTime": 900, "FlipAngle": 9,
              "PixelSpacing": [0.9, 0.8], "SliceThickness": 1.2, "MagneticFieldStrength": 3}


@pytest.fixture
def world(project, member, site):
    """PROJ1: subject S1 with the archived session E1 (scans 1: 2 files, 2: 3 files), and the prearchived
    session PRE1."""
    from prearchive.models import PrearchiveSession
    from prearchive.services.archive import session_archive, session_archive_request
    from prearchive.services.builder import session_build

    study = send_study(project="PROJ1", subject="x", label="pre_E1", series=((1, "MR", 2), (2, "MR", 3)),
                       **MR_HEADERS)
    pre = PrearchiveSession.objects.get(tag=study)
    S = PrearchiveSession.Status
    session_build(session_id=pre.pk, expected=(S.RECEIVING, S.QUEUED_BUILDING))
    session_archive_request(session=PrearchiveSession.objects.get(pk=pre.pk), actor="t", subject="S1", label="E1")
    assert session_archive(session_id=pre.pk) == "archived"
    waiting = ready_session(project="PROJ1", subject="S2", label="PRE1")
    return {"experiment": ImageSession.objects.get(label="E1"), "prearchived": waiting}


def _dicom(raw: bytes):
    return dcmread(io.BytesIO(raw))


def _zip_datasets(path: Path) -> dict[str, object]:
    with zipfile.ZipFile(path) as zf:
        return {name: _dicom(zf.read(name)) for name in zf.namelist()}


def test_xnatpy_walk_downloads_creation_prearchive_and_import(world, live_server, tmp_path):
    import xnat

    archived = world["experiment"]
    with xnat.connect(live_server.url, user="mike", password="mike-pass-1") as session:
        project = session.projects["PROJ1"]
        assert project.name == "Project One"
        subject = project.subjects["S1"]
        assert subject.label == "S1"
        experiment = subject.experiments["E1"]
        assert experiment.id == archived.accession_id and experiment.label == "E1"
        assert experiment.__xsi_type__ == "xnat:mrSessionData"
        assert sorted(experiment.scans.keys()) == ["1", "2"] or sorted(s.id for s in experiment.scans.values()) == [
            "1", "2"]
        scan = experiment.scans["1"]
        assert (scan.id, scan.frames, scan.quality, scan.modality) == ("1", 2, "usable", "MR")
        assert scan.series_description == "T1 MPRAGE"
        assert (scan.parameters.tr, scan.parameters.te, scan.parameters.flip) == (2300.0, 2.98, 9)
        assert scan.parameters.voxel_res.x == pytest.approx(0.8) and scan.field_strength == "3"
        files = scan.resources["DICOM"].files
        assert len(files) == 2
        first = files[0]
        with first.open() as handle:
            ds = _dicom(handle.read())
        assert ds.SeriesNumber == 1 and ds.Modality == "MR"

        # Downloads: experiment, scan and resource level zips, each file a DICOM dataset.
        experiment.download(tmp_path / "experiment.zip")
        whole = _zip_datasets(tmp_path / "experiment.zip")
        assert len(whole) == 5 and {ds.SeriesNumber for ds in whole.values()} == {1, 2}
        experiment.scans["2"].download(tmp_path / "scan.zip")
        assert {ds.SeriesNumber for ds in _zip_datasets(tmp_path / "scan.zip").values()} == {2}
        scan.resources["DICOM"].download(tmp_path / "resource.zip")
        assert len(_zip_datasets(tmp_path / "resource.zip")) == 2

        # Creation: a subject through the generated class, as xnatpy's documentation shows.
        created = session.classes.SubjectData(parent=project, label="XNATPY_NEW")
        assert created.label == "XNATPY_NEW"
        assert Subject.objects.filter(project_id="PROJ1", label="XNATPY_NEW").exists()
        project.clearcache()
        assert "XNATPY_NEW" in project.subjects.keys() or any(
            s.label == "XNATPY_NEW" for s in project.subjects.values())

        # Prearchive and import.
        listed = {s.label: s for s in session.prearchive.sessions()}
        assert "PRE1" in listed and listed["PRE1"].status == "READY"
        session_files(tmp_path / "up", series=1, per_series=2)
        imported = session.services.import_(zip_of(tmp_path / "up", tmp_path / "up.zip"), project="PROJ1",
                                            subject="XI01", experiment="XI01_MR1", destination="/prearchive")
        assert imported.uri.startswith("/data/prearchive/projects/PROJ1/")
        assert "XI01_MR1" in {s.label for s in session.prearchive.sessions(project="PROJ1")}

        # archive() of a prearchive session answers the archived experiment, of the model's class.
        experiment_b = listed["PRE1"].archive(subject="S2", experiment="E2")
        assert experiment_b.label == "E2" and experiment_b.__xsi_type__ == "xnat:mrSessionData"
        assert ImageSession.objects.filter(label="E2", subject__label="S2").exists()


def test_pyxnat_walk_creation_and_prearchive(world, live_server, tmp_path):
    from pyxnat import Interface

    archived = world["experiment"]
    intf = Interface(server=live_server.url, user="mike", password="mike-pass-1")
    project = intf.select.project("PROJ1")
    assert project.exists()
    assert [s.label() for s in project.subjects()] == ["S1"]
    subject = project.subject("S1")
    assert subject.exists()
    assert [e.label() for e in subject.experiments()] == ["E1"]
    experiment = subject.experiment("E1")
    assert experiment.id() == archived.accession_id
    assert sorted(s.id() for s in experiment.scans()) == ["1", "2"]
    resource = experiment.scan("2").resource("DICOM")
    assert resource.exists()
    files = list(resource.files())
    assert len(files) == 3
    copy = files[0].get_copy(str(tmp_path / "copy.dcm"))
    assert _dicom(Path(copy).read_bytes()).SeriesNumber == 2

    listed = list(intf.select("/projects/PROJ1/subjects/*/experiments/*"))
    assert [e.label() for e in listed] == ["E1"]

    new = project.subject("PYXNAT_NEW")
    assert not new.exists()
    new.create()
    assert new.exists()
    assert Subject.objects.filter(project_id="PROJ1", label="PYXNAT_NEW").exists()

    sessions = intf.manage.prearchive.get()
    assert any("PRE1" in str(row) for row in sessions)
    intf.disconnect()


def test_a_subject_created_by_each_client_is_listed_by_the_other(world, live_server, tmp_path):
    import xnat
    from pyxnat import Interface

    intf = Interface(server=live_server.url, user="mike", password="mike-pass-1")
    intf.select.project("PROJ1").subject("BY_PYXNAT").create()
    with xnat.connect(live_server.url, user="mike", password="mike-pass-1") as session:
        project = session.projects["PROJ1"]
        assert "BY_PYXNAT" in [s.label for s in project.subjects.values()]
        session.classes.SubjectData(parent=project, label="BY_XNATPY")
    assert "BY_XNATPY" in [s.label() for s in intf.select.project("PROJ1").subjects()]
    intf.disconnect()


def test_pyxnat_put_on_an_existing_project_is_idempotent(world, live_server, tmp_path):
    """pyxnat's create() PUTs every missing ancestor; XNAT answers 200 to a PUT on an existing project."""
    from pyxnat import Interface

    ProjectMember.objects.filter(user__username="mike").update(role="owner")
    intf = Interface(server=live_server.url, user="mike", password="mike-pass-1")
    intf.select.project("PROJ1").create()
    assert Project.objects.get(pk="PROJ1").name == "Project One"
    intf.disconnect()
