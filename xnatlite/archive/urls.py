"""URLs of the review/archive engineer: XNAT REST for review actions, the archive and anon scripts.
Included before prearchive.urls: GET on a prearchive session path is delegated to the intake view."""
from django.contrib.auth.views import LoginView
from django.urls import path, re_path

from . import api as archive_api, api_anon as archive_api_anon, api_data as archive_api_data
from . import api_config, api_jobs, api_rest, api_schemas

SEG = r"[^/]+"
urlpatterns = [
    # XNAT's login page: anonymous visitors of the pages land here. XNAT clients (xnatpy) probe "/" and take
    # the part of the final URL before "/app/" as the server's root, so the login page must live under /app/.
    path("app/template/Login.vm", LoginView.as_view(template_name="prearchive/login.html"), name="xnat-login"),
    re_path(rf"^data/prearchive/projects/(?P<project>{SEG})/(?P<timestamp>{SEG})/(?P<folder>{SEG})/?$",
            archive_api.prearchive_session),
    re_path(r"^data/services/prearchive/(?P<operation>move|delete|rebuild)/?$", archive_api.services_prearchive),
    re_path(r"^data/services/archive/?$", archive_api.services_archive),
    re_path(r"^data/services/archive/jobs/(?P<archive_job_id>[0-9]+)/?$", api_jobs.archive_job),
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
    # The archive's data REST (api_rest.py), each path also under /data/archive/.
    re_path(r"^data/(?:archive/)?projects/?$", api_rest.projects),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/?$", api_rest.project),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/subjects/?$", api_rest.project_subjects),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/subjects/(?P<subject>{SEG})/?$", api_rest.subject),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/subjects/(?P<subject>{SEG})/experiments/?$",
            api_rest.subject_experiments),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/experiments/?$", api_rest.project_experiments),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/resources/?$", api_rest.empty_listing),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/files/?$", api_rest.empty_listing),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/subjects/(?P<subject>{SEG})/resources/?$",
            api_rest.empty_listing),
    re_path(rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/subjects/(?P<subject>{SEG})/files/?$",
            api_rest.empty_listing),
    re_path(r"^data/(?:archive/)?subjects/?$", api_rest.subjects),
    re_path(rf"^data/(?:archive/)?subjects/(?P<subject>{SEG})/?$", api_rest.subject_by_id),
    re_path(rf"^data/(?:archive/)?subjects/(?P<subject>{SEG})/experiments/?$", api_rest.subject_experiments),
    re_path(r"^data/(?:archive/)?experiments/?$", api_rest.experiments),
    # The desktop client's config paths (api_config.py)
    re_path(r"^data/config/seriesImportFilter/config/?$", api_config.site_series_import_filter),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/config/seriesImportFilter/config/?$",
            api_config.project_series_import_filter),
    re_path(r"^data/config/tracers/tracers/?$", api_config.site_tracers),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/config/tracers/tracers/?$", api_config.project_tracers),
    re_path(r"^data/config/separatePETMR/config/?$", api_config.site_separate_petmr),
    re_path(rf"^data/projects/(?P<project_id>{SEG})/config/separatePETMR/config/?$", api_config.project_separate_petmr),
    re_path(rf"^data/config/applet/(?P<name>{SEG})/?$", api_config.site_applet),
    # XNAT's schemas (api_schemas.py)
    re_path(r"^xapi/schemas/?$", api_schemas.schemas),
    re_path(rf"^xapi/schemas/(?P<schema>{SEG})/?$", api_schemas.schema),
    path("schemas/xnat/xnat.xsd", api_schemas.xnat_xsd),
    re_path(r"^data/search/elements/?$", api_schemas.search_elements),
    re_path(rf"^data/search/elements/(?P<element>{SEG})/?$", api_schemas.search_element_fields),
]
EXPERIMENT_PREFIXES = (
    rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/subjects/(?P<subject>{SEG})/experiments/(?P<experiment>{SEG})",
    rf"^data/(?:archive/)?projects/(?P<project_id>{SEG})/experiments/(?P<experiment>{SEG})",
    rf"^data/(?:archive/)?experiments/(?P<experiment>{SEG})",
)
EXPERIMENT_PATHS = (
    ("", api_rest.experiment),
    ("/files", api_rest.experiment_files),
    ("/resources", api_rest.empty_listing),
    ("/resources/DICOM/files", api_rest.experiment_files),
    ("/scans", api_rest.scans),
    (rf"/scans/(?P<scans>{SEG})/files", api_rest.scan_files),
    (rf"/scans/(?P<scan>{SEG})", api_rest.scan),
    (rf"/scans/(?P<scan>{SEG})/resources", api_rest.scan_resources),
    (rf"/scans/(?P<scan>{SEG})/resources/(?P<resource>{SEG})", api_rest.scan_resource),
    (rf"/scans/(?P<scan>{SEG})/resources/(?P<resource>{SEG})/files", api_rest.resource_files),
    (rf"/scans/(?P<scan>{SEG})/resources/(?P<resource>{SEG})/files/(?P<file_name>{SEG})", api_rest.resource_file),
)
urlpatterns += [re_path(prefix + suffix + "/?$", view) for prefix in EXPERIMENT_PREFIXES
                for suffix, view in EXPERIMENT_PATHS]
