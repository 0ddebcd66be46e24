"""The reviewer's prearchive pages, under /prearchive/."""
from django.urls import path

from . import review_views as views

urlpatterns = [
    path("", views.session_list, name="prearchive-list"),
    path("list.json", views.session_list_json, name="prearchive-list-json"),
    path("bulk", views.bulk_action, name="prearchive-bulk"),
    path("<int:pk>/", views.session_detail, name="prearchive-session"),
    path("<int:pk>/status.json", views.session_status, name="prearchive-status"),
    path("<int:pk>/action", views.session_action, name="prearchive-action"),
    path("<int:pk>/archive", views.session_archive_form, name="prearchive-archive"),
    path("<int:pk>/scans/<str:scan_id>/thumbnail.png", views.scan_thumbnail, name="prearchive-thumbnail"),
    path("<int:pk>/files/<int:file_id>/header", views.file_header, name="prearchive-header"),
]
