"""The site settings page speaks of xnatlite (no "Upload > Images", no Upload Assistant to download), shows
byte counts readably and the true minimums; an unknown labeling scheme is refused (admin and project page)."""
from __future__ import annotations

import re
from html import unescape

import pytest

from xnatlite.models import Project

pytestmark = pytest.mark.django_db


def test_settings_help_is_xnatlites_with_readable_bytes_and_true_minimums(client, admin_user, site):
    client.force_login(admin_user)
    page = unescape(client.get(f"/admin/xnatlite/siteconfig/{site.pk}/change/").content.decode())
    assert "Upload > Images" not in page
    assert "offers no Upload Assistant download" in page
    assert "53,687,091,200 bytes (50.0\xa0GB)" in page or "53,687,091,200 bytes (50.0 GB)" in page
    for name in ("session_xml_rebuilder_repeat", "session_xml_rebuilder_interval", "upload_max_entries",
                 "upload_max_compression_ratio"):
        tag = re.search(rf'<input[^>]*name="{name}"[^>]*>', page).group(0)
        assert 'min="1"' in tag, tag
    answer = client.post(f"/admin/xnatlite/siteconfig/{site.pk}/change/", {"session_xml_rebuilder_interval": "0"})
    assert "greater than or equal to 1" in answer.content.decode()


def test_unknown_labeling_scheme_is_refused(client, owner, site):
    client.force_login(owner)
    base = {"section": "settings", "name": "Project One", "series_import_filter_mode": "blacklist",
            "allow_create_subject": "on"}
    answer = client.post("/projects/PROJ1/manage/", {**base, "default_subject_labeling_scheme": "by_magic"},
                         follow=True)
    assert "is not a subject labeling scheme" in unescape(answer.content.decode())
    answer = client.post("/projects/PROJ1/manage/", {**base, "default_session_labeling_scheme": "whatever"},
                         follow=True)
    assert "is not a session labeling scheme" in unescape(answer.content.decode())
    assert Project.objects.get(pk="PROJ1").default_session_labeling_scheme == ""
    scheme = 'makeSessionLabel[format["{0}_v##_{1}", subject, lowercase[modalityLabel]]]'
    client.post("/projects/PROJ1/manage/", {**base, "default_subject_labeling_scheme": "dicom_patient_id",
                                            "default_session_labeling_scheme": scheme})
    project = Project.objects.get(pk="PROJ1")
    assert (project.default_subject_labeling_scheme, project.default_session_labeling_scheme) == (
        "dicom_patient_id", scheme)
