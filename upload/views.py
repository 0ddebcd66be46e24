"""Views: the compressed uploader page and its job endpoints, and XNAT's POST /data/services/import.
Thin: parse the request, call one service, render or answer text."""
from __future__ import annotations

import functools
import logging
import tempfile
from pathlib import Path

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods

from xnatlite import rest
from xnatlite.auth import xnat_api
from xnatlite.models import Subject
from xnatlite.selectors import site_config_get

from . import services
from .models import UploadJob
from .services import ImportRefused

logger = logging.getLogger(__name__)

# Raw bodies are named "upload" + an extension chosen by MIME type, as XNAT does (reference §4).
RAW_NAMES = {"application/zip": "upload.zip", "application/x-zip-compressed": "upload.zip",
             "application/x-gtar": "upload.tar.gz", "application/x-tar": "upload.tar",
             "application/x-gzip": "upload.gzip", "application/gzip": "upload.gzip",
             "application/dicom": "upload.dcm"}


MSG_SERVER_FAULT = "The server could not complete the import; nothing more was imported. Try again later.\n"

# ------------------------------------------------------------------ multipart straight to disk


class _DiskFile(UploadedFile):
    def __init__(self, name, content_type, charset, content_type_extra, folder: Path):
        folder.mkdir(parents=True, exist_ok=True)
        file = tempfile.NamedTemporaryFile(prefix="upload-", suffix=".part", dir=folder, delete=False)
        super().__init__(file, name, content_type, 0, charset, content_type_extra)

    def temporary_file_path(self) -> str:
        return self.file.name


class DiskUploadHandler(FileUploadHandler):
    """Every multipart file part goes to a temporary file under UPLOAD_TMP_ROOT (the prearchive's file
    system), never into memory."""

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.file = _DiskFile(self.file_name, self.content_type, self.charset, self.content_type_extra,
                              Path(str(settings.UPLOAD_TMP_ROOT)))

    def receive_data_chunk(self, raw_data, start):
        self.file.write(raw_data)

    def file_complete(self, file_size):
        self.file.flush()
        self.file.seek(0)
        self.file.size = file_size
        return self.file


def disk_uploads(view):
    """Install DiskUploadHandler before anything (the CSRF check included) reads the body."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        request.upload_handlers = [DiskUploadHandler(request)]
        return view(request, *args, **kwargs)

    return wrapper


# ------------------------------------------------------------------ /data/services/import


def _params(request: HttpRequest) -> dict[str, str]:
    params = {k: request.GET.get(k) for k in request.GET}
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        params.update({k: request.POST.get(k) for k in request.POST})
    return params


def _uri_response(request: HttpRequest, uris: list[str]) -> HttpResponse:
    fmt = request.GET.get("format", "").lower()
    accept = request.META.get("HTTP_ACCEPT", "")
    if fmt in ("text", "plain", "txt") or ("text/plain" in accept and "text/uri-list" not in accept):
        return rest.text("\r\n".join(uris))
    if fmt == "html":
        items = "".join(f'<li><a href="{u}">{u}</a></li>' for u in uris)
        return HttpResponse(f"<html><body><ul>{items}</ul></body></html>", content_type="text/html")
    return rest.text("".join(u + "\r\n" for u in uris), content_type="text/uri-list")


def _received_file(request: HttpRequest) -> tuple[Path, str]:
    """(temporary file, name) of the one uploaded resource: a multipart part or the raw body."""
    if request.content_type == "multipart/form-data":
        files = [f for key in request.FILES for f in request.FILES.getlist(key)]
        if len(files) > 1:
            for f in files:
                Path(f.temporary_file_path()).unlink(missing_ok=True)
            raise ImportRefused("Importer is limited to one uploaded resource at a time.")
        if not files:
            raise ImportRefused("Unable to identify upload format.")
        f = files[0]
        path = Path(f.temporary_file_path())
        f.close()
        if f.size == 0:
            path.unlink(missing_ok=True)
            raise ImportRefused(services.MSG_EMPTY_BODY)
        return path, f.name or "upload"
    length = request.META.get("CONTENT_LENGTH")
    path = services.body_to_temp(stream=request, length=int(length) if length and length.isdigit() else None)
    return path, RAW_NAMES.get(request.content_type, "upload")


@disk_uploads
@xnat_api
@require_http_methods(["POST", "PUT"])
def services_import(request: HttpRequest) -> HttpResponse:
    path = None
    report, receipt = None, None  # the import's report, once a handler runs: recorded as one audit event
    try:
        try:
            raw = _params(request)
        except MultiPartParserError:
            raise ImportRefused("The multipart body could not be read.") from None
        params = services.import_params_normalize(raw=raw)
        handler = services.import_handler_choose(params=params, content_type=request.content_type)
        services.import_authorize(user=request.user, params=params)
        if handler == "inbox":
            from .inbox import inbox_import

            if not params.get("PROJECT_ID") and not request.user.is_superuser:
                raise ImportRefused("Name the project (PROJECT_ID) to import from the inbox.", status=403)
            report, receipt = services.ImportReport(), "inbox"
            inbox_import(path=params.get("path", ""), params=params, user=request.user, report=report)
        else:
            path, name = _received_file(request)
            report, receipt = services.ImportReport(), "REST"
            if handler == "gradual-DICOM":
                services.dicom_import(path=path, params=params, user=request.user, report=report)
                path = None  # intake took it over
            else:
                services.archive_import(archive=path, name=name, params=params, user=request.user,
                                        refusals=True, report=report)
        services.import_receipt_record(report=report, actor=request.user.get_username(), route=receipt,
                                       project_id=params.get("PROJECT_ID", ""))
        return _uri_response(request, report.uri_list())
    except ImportRefused as exc:
        if report is not None:
            services.import_receipt_record(report=report, actor=request.user.get_username(), route=receipt,
                                           project_id=params.get("PROJECT_ID", ""), failed=exc.message)
        return rest.text(exc.message.rstrip("\n") + "\n", status=exc.status)
    except Exception:  # noqa: BLE001 - logged with its traceback here, never shown to the caller
        logger.exception("import failed on the server")
        return rest.text(MSG_SERVER_FAULT, status=503)
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
        _discard_uploads(request)


def _discard_uploads(request: HttpRequest) -> None:
    files = getattr(request, "_files", None)
    for key in files or ():
        for f in files.getlist(key):
            if hasattr(f, "temporary_file_path"):
                Path(f.temporary_file_path()).unlink(missing_ok=True)


# ------------------------------------------------------------------ the compressed uploader page


@login_required
@require_GET
def uploader_page(request: HttpRequest) -> HttpResponse:
    config = site_config_get()
    projects = list(services.uploader_projects(user=request.user))
    tracers = config.pet_tracer_list
    project_info = [{"id": p.id, "name": p.name, "auto_archive": p.prearchive_code in (4, 5),
                     "allow_create_subject": p.allow_create_subject,
                     "subjects": list(Subject.objects.filter(project=p).values_list("label", flat=True)[:500]),
                     "tracers": p.pet_tracers.split() if p.pet_tracers_enabled else tracers}
                    for p in projects]
    return render(request, "upload/uploader.html", {
        "hidden": config.ui_hide_compressed_uploader_upload_option, "projects": project_info,
        "tracers": tracers,
    })


@login_required
@require_http_methods(["POST"])
def job_create(request: HttpRequest) -> HttpResponse:
    """The uploader's XHR: the archive as the raw body (so it streams to disk), fields in the query."""
    q = request.GET
    params = {"PROJECT_ID": q.get("project", ""), "SUBJECT_ID": q.get("subject", "").strip(),
              "EXPT_LABEL": q.get("session", "").strip(), "TRACER": q.get("pet_tracer", "").strip()}
    length = request.META.get("CONTENT_LENGTH")
    try:
        job = services.upload_job_create(user=request.user, params={k: v for k, v in params.items() if v},
                                         file_name=q.get("name", "") or "upload", stream=request,
                                         length=int(length) if length and length.isdigit() else None)
    except ImportRefused as exc:
        return JsonResponse({"error": exc.message}, status=exc.status)
    except OSError:
        logger.exception("upload could not be stored")
        return JsonResponse({"error": MSG_SERVER_FAULT.strip()}, status=503)
    return JsonResponse({"id": str(job.pk), "status_url": f"/upload/jobs/{job.pk}"}, status=202)


@login_required
@require_GET
def job_status(request: HttpRequest, job_id) -> HttpResponse:
    job = UploadJob.objects.filter(pk=job_id, user=request.user).first()
    if job is None:
        raise Http404("No such upload.")
    return JsonResponse(services.upload_job_state(job=job))


@login_required
@require_GET
def history_page(request: HttpRequest) -> HttpResponse:
    """One upload history for every way in (upload/history.py)."""
    from .history import upload_history

    return render(request, "upload/history.html", {"rows": upload_history(user=request.user),
                                                   "admin": request.user.is_superuser})
