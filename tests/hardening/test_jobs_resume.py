"""Issue 16, item 5: an uploader job whose worker dies is resumed (or failed with a reason), its temporary
files go (no raw PHI left in ``.incoming``), and its state moves on; a redelivered message resumes a job that
is IMPORTING but whose worker is gone; job recovery covers uploader jobs and transfers."""
from __future__ import annotations

import io
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings
from pydicom import dcmread

from prearchive.models import PrearchiveFile
from tests.conftest import redis_flush
from tests.upload.helpers import leftovers, session_files, zip_of
from upload.models import UploadJob

from .conftest import fast_site, wait_until, worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def sops_of(paths) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in paths}


def upload_job(member, tmp_path, *, series: int, per_series: int):
    from upload.services import upload_job_create

    paths = session_files(tmp_path / "src", series=series, per_series=per_series)
    archive = zip_of(tmp_path / "src", tmp_path / "up.zip")
    job = upload_job_create(user=member, params={"project": "PROJ1"}, file_name="up.zip",
                            stream=io.BytesIO(archive.read_bytes()), length=None)
    return job, sops_of(paths)


def stored_once(sops: set[str]) -> None:
    rows = list(PrearchiveFile.objects.values_list("sop_instance_uid", flat=True))
    assert len(rows) == len(set(rows)) and set(rows) == sops


def test_uploader_job_whose_worker_is_killed_is_resumed_by_the_next_worker(member, fault_env, tmp_path, procs):
    fast_site(idle=3600)
    redis_flush()
    flag = tmp_path / "paused"
    # The victim stops after the first file's intake (the rest extracted in .incoming) and dies there.
    victim = worker(fault_env, tmp_path / "victim.log", name="victim",
                    pause_after="prearchive.services.intake:dicom_file_receive", flag=flag)
    procs.append(victim)
    job, sops = upload_job(member, tmp_path, series=3, per_series=40)
    wait_until(flag.exists, timeout=60, every=0.02, what="the job midway", procs=[victim])
    victim.kill()
    job.refresh_from_db()
    assert job.status == UploadJob.Status.IMPORTING and job.files_total == 120
    assert leftovers(settings.UPLOAD_TMP_ROOT)  # the dead run's extracted files (and the archive) are there

    rescuer = worker(fault_env, tmp_path / "rescuer.log", name="rescuer")  # job recovery at its start
    procs.append(rescuer)
    wait_until(lambda: UploadJob.objects.get(pk=job.pk).status == UploadJob.Status.DONE, timeout=120,
               what="the job resumed and done", procs=[rescuer])
    job.refresh_from_db()
    assert job.files_done == job.files_total == 120 and job.error == ""
    stored_once(sops)
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []  # no raw PHI left in .incoming, nor the archive
    assert "re-queued 1 upload job" in rescuer.text()


def test_a_redelivered_message_resumes_an_importing_uploader_job_whose_worker_is_gone(member, tmp_path):
    from upload.services import upload_job_run, upload_job_work_dir

    job, sops = upload_job(member, tmp_path, series=2, per_series=3)
    # As a killed worker left it: IMPORTING, a half-extracted folder of its own.
    UploadJob.objects.filter(pk=job.pk).update(status=UploadJob.Status.IMPORTING, files_total=6, files_done=2)
    stale = upload_job_work_dir(job.pk) / "extract-dead" / "x.dcm"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"raw")
    assert upload_job_run(job_id=job.pk) == UploadJob.Status.DONE
    assert upload_job_run(job_id=job.pk) is None  # done: a further copy is a no-op
    stored_once(sops)
    assert leftovers(settings.UPLOAD_TMP_ROOT) == []


def test_a_transfer_whose_worker_died_midway_is_resumed_and_each_file_stored_once(member, tmp_path, settings):
    from tests.upload_client.helpers import session_files as client_session_files
    from tests.upload_client.helpers import zip_of as client_zip_of
    from upload.client import importer, services
    from upload.client.models import Transfer

    paths = client_session_files(tmp_path / "src", study_date="20240115")
    archive = client_zip_of(paths, tmp_path / "up.zip")
    transfer = services.transfer_create(user=member, project_id="PROJ1", file_name="up.zip",
                                        size=archive.stat().st_size)
    services.transfer_receive(transfer=transfer, stream=io.BytesIO(archive.read_bytes()), length=None)
    assert services.transfer_inspect(transfer_id=transfer.pk) == Transfer.Status.AWAITING
    transfer = Transfer.objects.get(pk=transfer.pk)
    importer.transfer_confirm(transfer=transfer, user=member, data={"sessions": [
        {"key": "s1", "subject": "S1", "label": "S1_MR"}]})
    real = importer._file_import
    calls = {"n": 0}

    def dies_after_two(**kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise SystemExit("the worker was killed")  # not an Exception: nothing of the job's end runs
        return real(**kwargs)

    with mock.patch.object(importer, "_file_import", side_effect=dies_after_two), pytest.raises(SystemExit):
        importer.transfer_import(transfer_id=transfer.pk)
    assert Transfer.objects.get(pk=transfer.pk).status == Transfer.Status.IMPORTING
    assert PrearchiveFile.objects.count() == 2

    from prearchive.services.recover import uploads_recover

    with mock.patch("xnatlite.celery.app.send_task") as send:
        assert uploads_recover() == 1  # job recovery sees the transfer whose worker is gone
    send.assert_called_once_with("upload.client.transfer_import", args=[str(transfer.pk)])
    assert importer.transfer_import(transfer_id=transfer.pk) == Transfer.Status.DONE  # the redelivered message
    transfer.refresh_from_db()
    assert transfer.files_done == transfer.files_total == len(paths)
    stored_once(sops_of(paths))
    assert not Path(transfer.work_dir).exists()
