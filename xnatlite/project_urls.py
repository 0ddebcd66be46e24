"""The project pages for owners and site admins, under /projects/."""
from django.urls import path

from . import project_views as views

urlpatterns = [
    path("", views.project_list, name="project-list"),
    path("<str:project_id>/manage/", views.project_manage, name="project-manage"),
    path("<str:project_id>/manage/preview/", views.project_preview, name="project-preview"),
]
