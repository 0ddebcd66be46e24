"""URLs of the review/archive engineer: XNAT REST for review actions, the archive and anon scripts.
Included before prearchive.urls: GET on a prearchive session path is delegated to the intake view."""
from django.contrib.auth.views import LoginView
from django.urls import path, re_path

from . import api as archive_api, api_anon as archive_api_anon, api_data as archive_api_data

SEG = r"[^/]+"
urlpatterns = [
    # XNAT's login page: anonymous visitors of the pages land here. XNAT clients (xnatpy) probe "/" and take
    # the part of the final URL before "/app/" as the server's root, so the login page must live under /app/.
    path("app/template/Login.vm", LoginView.as_view(template_name="prearchive/login.html"), name="xnat-login"),
    re_path(rf"^data/prearchive/projects/(?P<project>{SEG})/(?P<timestamp>{SEG})/(?P<folder>{SEG})/?$",
            archive_api.prearchive_session),
    re_path(r"^data/services/prearchive/(?P<operation>move|delete|rebuild)/?$", archive_api.services_prearchive),
    re_path(r"^data/services/archive/?$", archive_api.services_archive),
    re_path(rf"^data/(?:archive/)?projects/(?P<project>{SEG})/subjects/(?P<subject>{SEG})/experiments/"
            rf"(?P<label>{SEG})/?$", archive_api_data.experiment),
    re_path(rf"^data/(?:archive/)?projects/(?P<project>{SEG})/subjects/(?P<subject>{SEG})/experiments/"
            rf"(?P<label>{SEG})/(?:resources/DICOM/)?files/?$", archive_api_data.experiment_files),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/prearchive_code/?$", archive_api_data.prearchive_code),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/prearchive_code/(?P<code>{SEG})/?$",
            archive_api_data.prearchive_code),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/quarantine_code/?$", archive_api_data.quarantine_code),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/quarantine_code/(?P<code>{SEG})/?$",
            archive_api_data.quarantine_code),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/config/anon/projects/(?P<path_project>{SEG})/?$",
            archive_api_anon.project_config),
    re_path(r"^data/config/anon/script/?$", archive_api_anon.site_config),
    re_path(rf"^xapi/anonymize/projects/(?P<project_id>{SEG})/enabled/?$", archive_api_anon.xapi_project_enabled),
    re_path(rf"^xapi/anonymize/projects/(?P<project_id>{SEG})/?$", archive_api_anon.xapi_project),
    re_path(r"^xapi/anonymize/site/enabled/?$", archive_api_anon.xapi_site_enabled),
    re_path(r"^xapi/anonymize/site/?$", archive_api_anon.xapi_site),
    re_path(r"^xapi/anonymize/default/?$", archive_api_anon.xapi_default),
]
