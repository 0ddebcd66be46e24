"""The uploader client's pages and JSON endpoints, mounted at /upload/client/."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.start_page, name="upload_client"),
    path("transfers/", views.transfers_page, name="upload_client_transfers"),
    path("transfers.json", views.transfers_list),
    path("settings/<str:project_id>", views.project_settings),
    path("t/", views.transfer_create),
    path("t/<uuid:transfer_id>/", views.transfer_page, name="upload_client_transfer"),
    path("t/<uuid:transfer_id>/file", views.transfer_file),
    path("t/<uuid:transfer_id>/state", views.transfer_state),
    path("t/<uuid:transfer_id>/suggest", views.transfer_suggest),
    path("t/<uuid:transfer_id>/manifest.csv", views.manifest_download),
    path("t/<uuid:transfer_id>/manifest", views.manifest_upload),
    path("t/<uuid:transfer_id>/confirm", views.transfer_confirm),
    path("t/<uuid:transfer_id>/cancel", views.transfer_cancel),
    path("t/<uuid:transfer_id>/frame/<str:key>/<str:scan_id>.png", views.frame),
]
