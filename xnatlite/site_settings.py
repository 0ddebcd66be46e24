"""The XNAT property names of the site settings, mapped to SiteConfig fields, grouped as seed 000 groups
them. `/xapi/siteConfig` and the admin page both read this table."""
from __future__ import annotations

# (group title, [(XNAT property name, SiteConfig field name), ...])
GROUPS: list[tuple[str, list[tuple[str, str]]]] = [
    ("Available Upload Methods", [
        ("uiHideCompressedUploaderUploadOption", "ui_hide_compressed_uploader_upload_option"),
        ("uiHideXnatUploadAssistantDownload", "ui_hide_xnat_upload_assistant_download"),
        ("uiDefaultCompressedUploaderImporter", "ui_default_compressed_uploader_importer"),
    ]),
    ("Session Builder", [
        ("receivedFileUser", "received_file_user"),
        ("sessionXmlRebuilderRepeat", "session_xml_rebuilder_repeat"),
        ("sessionXmlRebuilderInterval", "session_xml_rebuilder_interval"),
        ("reloadPrearcDatabaseOnStartup", "reload_prearc_database_on_startup"),
        # sessionArchiveTimeoutInterval left the page (docs/phi-archive.md): a dead archive job is found by
        # its released lock (services/recover.py), never by a clock that could cut a live one short.
    ]),
    ("Site-wide Anonymization Script", [
        ("enableSitewideAnonymizationScript", "enable_sitewide_anonymization_script"),
        ("sitewideAnonymizationScript", "sitewide_anonymization_script"),
        ("rerunProjectAnonOnRename", "rerun_project_anon_on_rename"),
        ("preventAnonAllowed", "prevent_anon_allowed"),
        ("residualPhiRefuseArchive", "residual_phi_refuse_archive"),
    ]),
    ("Site-wide Series Import Filter", [
        ("enableSitewideSeriesImportFilter", "enable_sitewide_series_import_filter"),
        ("sitewideSeriesImportFilterMode", "sitewide_series_import_filter_mode"),
        ("sitewideSeriesImportFilter", "sitewide_series_import_filter"),
    ]),
    ("Site-wide PET Tracers", [
        ("sitewidePetTracers", "sitewide_pet_tracers"),
    ]),
    ("Site-wide Handling of PET-MR Sessions", [
        ("sitewidePetMr", "sitewide_pet_mr"),
    ]),
    ("Projects, Receiver and Uploads", [
        ("defaultProjectAutoArchiveSetting", "default_project_auto_archive_setting"),
        ("projectAllowAutoArchive", "project_allow_auto_archive"),
        ("uiAllowQuarantine", "ui_allow_quarantine"),
        ("uiAllowNonAdminProjectCreation", "ui_allow_non_admin_project_creation"),
        ("enableDicomReceiver", "enable_dicom_receiver"),
        ("dicomFileNameTemplate", "dicom_file_name_template"),
        ("inboxPath", "inbox_path"),
        ("uploadMaxBytes", "upload_max_bytes"),
        ("uploadMaxEntries", "upload_max_entries"),
        ("uploadMaxCompressionRatio", "upload_max_compression_ratio"),
        ("dicomEditAllowGetUrl", "dicom_edit_allow_get_url"),
    ]),
]

PROPERTIES: dict[str, str] = {prop: field for _, items in GROUPS for prop, field in items}
FIELD_TO_PROPERTY: dict[str, str] = {field: prop for prop, field in PROPERTIES.items()}
# XNAT's aliases for the same properties.
ALIASES: dict[str, str] = {
    "defaultPrearchiveCode": "defaultProjectAutoArchiveSetting",
    "project.allow-auto-archive": "projectAllowAutoArchive",
    "UI.allow-quarantine": "uiAllowQuarantine",
}


def canonical_property(name: str) -> str | None:
    name = ALIASES.get(name, name)
    return name if name in PROPERTIES else None
