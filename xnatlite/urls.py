from django.contrib import admin
from django.templatetags.static import static
from django.urls import include, path, re_path
from django.views.generic import RedirectView

from . import api, audit_views

urlpatterns = [
    path("", RedirectView.as_view(url="/prearchive/", permanent=False)),
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("admin/", admin.site.urls),
    # Authentication, as XNAT clients expect it
    path("data/JSESSION", api.jsession),
    path("data/services/auth", api.services_auth),
    path("data/auth", api.auth_check),
    path("data/version", api.version),
    path("xapi/siteConfig/buildInfo", api.build_info),
    path("xapi/siteConfig/buildInfo/<str:name>", api.build_info_property),
    path("xapi/siteConfig/uptime", api.uptime),
    # Site settings
    path("xapi/siteConfig", api.site_config),
    re_path(r"^xapi/siteConfig/values/(?P<names>[^/]+)$", api.site_config_values),
    re_path(r"^xapi/siteConfig/(?P<name>[^/]+)$", api.site_config_property),
    path("upload/client/", include("upload.client.urls")),
    path("", include("upload.client.api_urls")),
    path("", include("upload.urls")),
    path("", include("anonymization.urls")),  # DicomEdit lookup tables
    # Review and archive, the archive's data REST (before prearchive.urls: it serves POST/DELETE on the
    # prearchive session path, GET delegated)
    path("", include("xnatlite.archive.urls")),
    path("prearchive/", include("prearchive.review_urls")),
    path("archive/", include("xnatlite.archive.page_urls")),
    path("projects/", include("xnatlite.project_urls")),
    path("audit/", audit_views.audit_list, name="audit-list"),
    path("", include("prearchive.urls")),
]
