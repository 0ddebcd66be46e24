"""The audit trail in words: one sentence per action, and details without internal codes or paths."""
from __future__ import annotations

from typing import Any

# action -> sentence; {actor}, {project}, {subject}, {session} and detail keys fill it in.
ACTION_WORDS: dict[str, str] = {
    "session_archive": "archived session {session} (subject {subject})",
    "prearchive_delete": "deleted session {session} from the prearchive",
    "prearchive_move": "moved session {session} from {old_project} to {new_project}",
    "prearchive_rebuild": "rebuilt session {session} in the prearchive",
    "prearchive_receive": "received session {session} over DICOM (from {calling_aet})",
    "session_archive_failed": "could not archive session {session}: {reason}",
    "import_receive": "imported files into {project} through the {route} import ({stored} stored, {filtered} filtered, {rejected} refused)",
    "upload_job_done": "uploaded a compressed file into {project} ({stored} files stored)",
    "upload_job_failed": "uploaded a compressed file into {project}, which failed: {reason}",
    "session_update": "changed archived session {session}",
    "session_delete": "deleted archived session {session}",
    "session_quarantine": "changed the quarantine of session {session}",
    "subject_create": "created subject {subject}",
    "subject_relabel": "relabelled subject {subject}",
    "subject_delete": "deleted subject {subject}",
    "project_create": "created project {project}",
    "project_update": "changed project {project}",
    "project_delete": "deleted project {project}",
    "project_settings_update": "changed the settings of {project}",
    "project_prearchive_code": "changed the prearchive setting of {project}",
    "project_quarantine_code": "changed the quarantine setting of {project}",
    "project_anon_script": "changed the anonymization script of {project}",
    "project_member_set": "gave {user} the role {role} in {project}",
    "project_member_remove": "removed {user} from {project}",
    "project_applet_setting": "changed an uploader setting of {project}",
    "site_config_update": "changed site settings",
    "upload_client_transfer_create": "started an upload to {project}",
    "upload_client_transfer_cancel": "discarded an upload to {project}",
    "upload_client_confirm": "confirmed an upload to {project}",
    "upload_client_import": "imported an upload into {project}",
    "upload_client_date_refused": "gave a visit date that does not match the data (upload to {project})",
    "upload_client_dates_unknown": "uploaded to {project} without knowing the visit dates",
    "upload_client_pixel_template": "blanked image regions of an upload to {project}",
}
HIDDEN_DETAILS = ("prearchive", "prearchive_id", "archive", "transfer", "path", "dir", "job")
DETAIL_WORDS = {"properties": "settings", "fields": "fields", "code": "code", "files": "files", "role": "role",
                "user": "user", "enabled": "enabled", "attempt": "attempt", "sessions": "sessions",
                "new_project": "to", "reason": "reason", "calling_aet": "sent by", "called_aet": "sent to", "old_project": "from", "wrong_sessions": "sessions with a wrong date"}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return "?"


def action_words(action: str) -> str:
    return ACTION_WORDS.get(action, action.replace("_", " "))


def audit_sentence(event) -> str:
    values = _Blank({k: _plain(v) for k, v in (event.details or {}).items()})
    values.update(actor=event.actor or "the system", project=event.project_id or "Unassigned",
                  subject=event.subject_label or "?", session=event.session_label or "?")
    return action_words(event.action).format_map(values)


def _plain(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain(v) for v in value)
    return str(value)


def audit_details(event) -> str:
    """The details a reader needs, in words; internal ids, URIs and paths are left out."""
    parts = []
    for key, value in (event.details or {}).items():
        if any(h == key or key.endswith("_" + h) or key.startswith(h + "_") for h in HIDDEN_DETAILS):
            continue
        text = _plain(value)
        if text.startswith("/"):
            continue
        parts.append(f"{DETAIL_WORDS.get(key, key.replace('_', ' '))}: {text}")
    return "; ".join(parts)
