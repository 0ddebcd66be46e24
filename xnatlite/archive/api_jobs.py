"""``GET /data/services/archive/jobs/{id}``: the status, progress and error of an edit of archived data
(xnatlite/archive/jobs.py), for whoever may read the project."""
from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from xnatlite import permissions, rest
from xnatlite.auth import xnat_api
from xnatlite.models import ArchiveJob

from .jobs import archive_job_state


@xnat_api
def archive_job(request: HttpRequest, archive_job_id: str) -> HttpResponse:
    if request.method != "GET":
        return rest.text("Method not allowed\n", status=405)
    job = ArchiveJob.objects.filter(pk=int(archive_job_id)).first() if archive_job_id.isdigit() else None
    if job is None or not permissions.can_read_project(request.user, job.project_id):
        return rest.not_found("No such job.")
    return JsonResponse(archive_job_state(job))
