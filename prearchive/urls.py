from django.urls import path, re_path

from . import api

urlpatterns = [
    path("data/prearchive", api.prearchive_list),
    # xnatpy lists every project's sessions here when no project is named.
    re_path(r"^data/prearchive/projects/?$", api.prearchive_list),
    re_path(r"^data/prearchive/projects/(?P<projects>[^/]+)$", api.prearchive_projects),
    re_path(r"^data/prearchive/projects/(?P<project>[^/]+)/(?P<timestamp>[^/]+)/(?P<folder>[^/]+)$",
            api.prearchive_session),
]
