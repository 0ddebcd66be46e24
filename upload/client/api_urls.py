"""XNAT's config paths for the uploader's project settings (mounted at the root)."""
from django.urls import re_path

from . import api

urlpatterns = [
    re_path(r"^data/projects/(?P<project_id>[^/]+)/config/applet/(?P<name>[^/]+)/?$", api.applet_config),
    re_path(r"^data/config/projects/(?P<project_id>[^/]+)/applet/(?P<name>[^/]+)/?$", api.applet_config),
]
