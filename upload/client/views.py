"""Views of the uploader client: thin (parse, call one service, render or answer JSON)."""
from __future__ import annotations

import functools
import json
import logging

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from upload.services import uploader_projects

from . import importer, manifest, services
from .models import Transfer

logger = logging.getLogger(__name__)
MSG_SERVER = "The server could not do this just now; try again in a moment."


def json_view(view):
    """Signed-in users only; errors as JSON with a message (never a traceback, never a 500 page)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        if not request.user.is_authenticated:
            return JsonResponse({"error": "Sign in first."}, status=401)
        try:
            return view(request, *args, **kwargs)
        except importer.VisitDateMismatch as exc:
            return JsonResponse({"error": " ".join(exc.messages), "wrong_sessions": exc.wrong,
                                 "attempts_left": exc.attempts_left}, status=400)
        except ValidationError as exc:
            return JsonResponse({"error": " ".join(exc.messages)}, status=400)
        except PermissionDenied as exc:
            return JsonResponse({"error": str(exc) or "You may not do this."}, status=403)
        except Http404 as exc:
            return JsonResponse({"error": str(exc) or "Not found."}, status=404)
        except Exception:  # noqa: BLE001
            logger.exception("uploader client view %s failed", view.__name__)
            return JsonResponse({"error": MSG_SERVER}, status=503)

    return wrapper


def _transfer(request: HttpRequest, transfer_id) -> Transfer:
    transfer = Transfer.objects.select_related("project").filter(pk=transfer_id, user=request.user).first()
    if transfer is None:
        raise Http404("No such upload.")
    return transfer


def _body(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body.decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError):
        raise ValidationError("The request is not valid JSON.") from None
    if not isinstance(data, dict):
        raise ValidationError("The request is not a JSON object.")
    return data


# ------------------------------------------------------------------ pages


@login_required
@require_GET
def start_page(request: HttpRequest) -> HttpResponse:
    projects = list(uploader_projects(user=request.user).values("id", "name"))
    return render(request, "upload/client/start.html", {"projects": projects})


@login_required
@require_GET
def transfers_page(request: HttpRequest) -> HttpResponse:
    return render(request, "upload/client/transfers.html", {})


@login_required
@require_GET
def transfer_page(request: HttpRequest, transfer_id) -> HttpResponse:
    transfer = _transfer(request, transfer_id)
    return render(request, "upload/client/transfer.html", {"transfer": transfer})


# ------------------------------------------------------------------ JSON


@json_view
@require_GET
def transfers_list(request: HttpRequest) -> HttpResponse:
    rows = Transfer.objects.filter(user=request.user).select_related("project")[:100]
    return JsonResponse({"transfers": [services.transfer_state(transfer=t) for t in rows]})


@json_view
@require_GET
def project_settings(request: HttpRequest, project_id: str) -> HttpResponse:
    project = services.project_for_upload(user=request.user, project_id=project_id)
    return JsonResponse(services.uploader_settings(project=project))


@json_view
@require_POST
def transfer_create(request: HttpRequest) -> HttpResponse:
    data = _body(request)
    try:
        size = int(data.get("size") or 0)
    except (TypeError, ValueError):
        size = 0
    transfer = services.transfer_create(user=request.user, project_id=str(data.get("project", "")),
                                        file_name=str(data.get("name", "")), size=size)
    return JsonResponse({"id": str(transfer.pk), "upload_url": f"/upload/client/t/{transfer.pk}/file",
                         "page": f"/upload/client/t/{transfer.pk}/"}, status=201)


@json_view
@require_http_methods(["PUT", "POST"])
def transfer_file(request: HttpRequest, transfer_id) -> HttpResponse:
    transfer = _transfer(request, transfer_id)
    length = request.META.get("CONTENT_LENGTH")
    transfer = services.transfer_receive(transfer=transfer, stream=request,
                                         length=int(length) if length and length.isdigit() else None)
    return JsonResponse(services.transfer_state(transfer=transfer), status=202)


@json_view
@require_GET
def transfer_state(request: HttpRequest, transfer_id) -> HttpResponse:
    transfer = _transfer(request, transfer_id)
    state = services.transfer_state(transfer=transfer)
    if transfer.status == Transfer.Status.AWAITING and request.GET.get("full") == "1":
        conf = services.uploader_settings(project=transfer.project)
        inspection = dict(transfer.inspection)
        if conf["require_date"]:  # the date is what the user must know; do not show it
            inspection["sessions"] = [{**s, "study_date": "", "study_time": ""} for s in inspection["sessions"]]
        state.update(inspection=inspection, settings=conf,
                     suggestions=services.suggestions(transfer=transfer))
        if conf["allow_bulk_upload"] and len(inspection["sessions"]) > 1:
            # The bulk review's identifying columns: this user's own upload, before anonymization.
            state["shown"] = services.sessions_shown(transfer=transfer)
    return JsonResponse(state)


@json_view
@require_POST
def transfer_suggest(request: HttpRequest, transfer_id) -> HttpResponse:
    """Session labels for the subjects the user chose: {"subjects": {key: subject}, "labels": {key: label}}
    (``labels``: what the page shows for the sessions whose label is not to be suggested again)."""
    transfer = _transfer(request, transfer_id)
    body = _body(request)
    subjects = {str(k): str(v) for k, v in (body.get("subjects") or {}).items()}
    kept = {str(k): str(v) for k, v in (body.get("labels") or {}).items()} if isinstance(body.get("labels"), dict) else {}
    return JsonResponse({"suggestions": services.suggestions(transfer=transfer, subjects=subjects,
                                                             labels_kept=kept)})


@json_view
@require_POST
def manifest_download(request: HttpRequest, transfer_id) -> HttpResponse:
    transfer = _transfer(request, transfer_id)
    rows = {str(k): v for k, v in (_body(request).get("rows") or {}).items() if isinstance(v, dict)}
    text = manifest.manifest_csv_build(sessions=transfer.inspection.get("sessions", []), rows=rows,
                                       hide_dates=transfer.project.require_date)
    response = HttpResponse(text, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="upload-{transfer.pk}.csv"'
    return response


@json_view
@require_POST
def manifest_upload(request: HttpRequest, transfer_id) -> HttpResponse:
    transfer = _transfer(request, transfer_id)
    rows = manifest.manifest_csv_apply(sessions=transfer.inspection.get("sessions", []), data=request.body,
                                       tracers=services.pet_tracers(project=transfer.project),
                                       hide_dates=transfer.project.require_date)
    return JsonResponse({"rows": rows, "order": list(rows)})


@json_view
@require_POST
def transfer_confirm(request: HttpRequest, transfer_id) -> HttpResponse:
    transfer = importer.transfer_confirm(transfer=_transfer(request, transfer_id), user=request.user,
                                         data=_body(request))
    return JsonResponse(services.transfer_state(transfer=transfer), status=202)


@json_view
@require_POST
def transfer_cancel(request: HttpRequest, transfer_id) -> HttpResponse:
    services.transfer_discard(transfer=_transfer(request, transfer_id), user=request.user)
    return JsonResponse({"ok": True})


@json_view
@require_GET
def frame(request: HttpRequest, transfer_id, key: str, scan_id: str) -> HttpResponse:
    transfer = _transfer(request, transfer_id)
    if transfer.status != Transfer.Status.AWAITING:
        raise ValidationError("The images are only available while the upload waits for confirmation.")
    raw = request.GET.get("frame")
    if raw is not None and not (raw.isdigit() and len(raw) <= 9):
        raise ValidationError("The frame must be a whole number.")
    try:
        png = importer.frame_png(transfer=transfer, key=key, scan_id=scan_id,
                                 frame=int(raw) if raw is not None else None)
    except ValidationError:
        raise
    except Exception:  # noqa: BLE001 - e.g. a compressed syntax without a decoder
        return JsonResponse({"error": "This scan's images cannot be shown."}, status=415)
    response = HttpResponse(png, content_type="image/png")
    response["Cache-Control"] = "private, no-store"
    return response
