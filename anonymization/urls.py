from django.urls import re_path

from anonymization import api

SEG = r"[^/]+"
urlpatterns = [
    re_path(r"^data/config/anon/lookup/?$", api.site_lookup),
    re_path(rf"^data/config/anon/lookup/(?P<name>{SEG})/?$", api.site_lookup),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/config/anon/lookup/?$", api.project_lookup),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/config/anon/lookup/(?P<name>{SEG})/?$", api.project_lookup),
]
