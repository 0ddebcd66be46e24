from django.urls import path

from . import views

urlpatterns = [
    path("data/services/import", views.services_import),
    path("upload/", views.uploader_page, name="upload"),
    path("upload/history/", views.history_page, name="upload_history"),
    path("upload/jobs", views.job_create),
    path("upload/jobs/<uuid:job_id>", views.job_status),
]
