from django.urls import path, re_path

from . import api

urlpatterns = [
    path("data/prearchive", api.prearchive_list),
    re_path(r"^data/prearchive/projects/(?P<projects>[^/]+)$", api.prearchive_projects),
    re_path(r"^data/prearchive/projects/(?P<project>[^/]+)/(?P<timestamp>[^/]+)/(?P<folder>[^/]+)$",
            api.prearchive_session),
]
