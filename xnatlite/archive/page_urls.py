"""The archive pages, under /archive/."""
from django.urls import path

from . import views

urlpatterns = [
    path("", views.project_list, name="archive-projects"),
    path("<str:project_id>/", views.project_detail, name="archive-project"),
    path("<str:project_id>/audit", views.project_audit, name="archive-audit"),
    path("<str:project_id>/subjects/<str:label>/", views.subject_detail, name="archive-subject"),
    path("<str:project_id>/sessions/<str:label>/", views.session_detail, name="archive-session"),
    path("<str:project_id>/sessions/<str:label>/download", views.session_download, name="archive-download"),
    path("<str:project_id>/sessions/<str:label>/manage", views.session_manage, name="archive-manage"),
    path("<str:project_id>/sessions/<str:label>/scans/<str:scan_id>/snapshot.png", views.scan_snapshot,
         name="archive-snapshot"),
    path("<str:project_id>/sessions/<str:label>/scans/<str:scan_id>/montage.png", views.scan_montage,
         name="archive-montage"),
    path("<str:project_id>/sessions/<str:label>/scans/<str:scan_id>/header", views.scan_header,
         name="archive-header"),
]
