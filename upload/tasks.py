"""Celery tasks of the upload routes: thin (ids in, call a service)."""
from __future__ import annotations

from celery import shared_task


@shared_task(name="upload.upload_job_run", ignore_result=True, acks_late=True)
def upload_job_run(job_id: str) -> None:
    from upload.services import upload_job_run as run

    run(job_id=job_id)
