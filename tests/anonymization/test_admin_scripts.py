"""Scripts are checked when saved in the admin (the old one stays in force), and previewed on a file."""
from __future__ import annotations

import io

import pytest
from django.forms.models import model_to_dict

from tests.dicom_factory import make_dataset, write_dataset
from xnatlite.defaults import DEFAULT_SITE_ANON_SCRIPT
from xnatlite.models import Project, SiteConfig

BAD_SCRIPTS = [
    ('version "6.1"\n(0010,0010) := "unterminated\n', "2:16:"),
    ('version "6.1"\n(0010,0010) := nosuchfn["x"]\n', "2:16:"),
    # issue 16 item 10: a 5,000-deep nested script is a located error when saved, not a 500
    ('version "6.1"\n(0010,0010) := ' + "lowercase[" * 5000 + '"x"' + "]" * 5000 + "\n", "2:"),
    ('version "6.6"\nl := ' + "{" * 5000 + '"x"' + "}" * 5000 + "\n", "2:"),
    ('version "9.9"\n', "1:"),
    ('version "6.1"\n(0010,0010) := (0018,901#)\n', "2:"),
]


def _site_form_data() -> dict:
    data = model_to_dict(SiteConfig.objects.get_or_create(pk=1)[0])
    return {k: ("" if v is None else v) for k, v in data.items() if v is not False}


@pytest.mark.parametrize("script, location", BAD_SCRIPTS)
def test_site_admin_refuses_bad_script_with_location(admin_client, admin_user, script, location):
    data = _site_form_data()
    data["sitewide_anonymization_script"] = script
    r = admin_client.post("/admin/xnatlite/siteconfig/1/change/", data)
    assert r.status_code == 200  # the form again, with the error
    errors = r.context["adminform"].form.errors["sitewide_anonymization_script"]
    assert errors[0].startswith(location), errors
    assert SiteConfig.objects.get().sitewide_anonymization_script == DEFAULT_SITE_ANON_SCRIPT


def test_project_admin_refuses_bad_script_and_keeps_old(admin_client, admin_user):
    project = Project.objects.create(id="P1", anon_script='version "6.1"\n-(0010,0030)\n', anon_script_enabled=True)
    data = {k: ("" if v is None else v) for k, v in model_to_dict(project).items() if v is not False}
    data.update({"anon_script": '-(0010,0030)\nfoo := bar[\n', "aliases-TOTAL_FORMS": "0",
                 "aliases-INITIAL_FORMS": "0", "memberships-TOTAL_FORMS": "0", "memberships-INITIAL_FORMS": "0"})
    r = admin_client.post("/admin/xnatlite/project/P1/change/", data)
    assert r.status_code == 200
    assert "2:" in str(r.context["adminform"].form.errors["anon_script"])
    project.refresh_from_db()
    assert project.anon_script == 'version "6.1"\n-(0010,0030)\n'


def test_preview_shows_changed_tags_and_stores_nothing(admin_client, admin_user, settings, tmp_path):
    ds = make_dataset(PatientName="Marker^Person", PatientBirthDate="19650203")
    buf = io.BytesIO()
    write_dataset(ds, tmp_path / "x.dcm")
    buf.write((tmp_path / "x.dcm").read_bytes())
    buf.seek(0)
    buf.name = "x.dcm"
    script = 'version "6.1"\n-(0010,0030)\n(0010,0010) := subject\n'
    r = admin_client.post("/admin/xnatlite/siteconfig/1/preview/",
                          {"script": script, "dicom_file": buf, "subject": "SUBJ9", "project": "P",
                           "session": "S", "modality_label": "MR"})
    assert r.status_code == 200
    changes = {c.keyword: (c.before, c.after) for c in r.context["result"].changes}
    assert changes["PatientBirthDate"] == ("19650203", None)
    assert changes["PatientName"] == ("Marker^Person", "SUBJ9")
    assert "DeidentificationMethodCodeSequence" in changes
    # Nothing was stored: no prearchive files, the site script is unchanged.
    assert not any(settings.PREARCHIVE_ROOT.rglob("*.dcm"))
    assert SiteConfig.objects.get().sitewide_anonymization_script == DEFAULT_SITE_ANON_SCRIPT


def test_preview_reports_script_error_and_non_dicom(admin_client, admin_user):
    bad = io.BytesIO(b"not a dicom file at all")
    bad.name = "x.dcm"
    r = admin_client.post("/admin/xnatlite/siteconfig/1/preview/", {"script": "-(0010,0030)\n", "dicom_file": bad})
    assert r.status_code == 200
    assert "not a readable DICOM file" in r.content.decode()
    good = io.BytesIO()
    make_dataset().save_as(good, enforce_file_format=True)
    good.seek(0)
    good.name = "y.dcm"
    r = admin_client.post("/admin/xnatlite/siteconfig/1/preview/",
                          {"script": 'version "6.1"\n(0010,0010) := nosuch[]\n', "dicom_file": good})
    assert "Script error: 2:" in r.content.decode()


def test_preview_is_admin_only(client, member):
    client.force_login(member)
    r = client.get("/admin/xnatlite/siteconfig/1/preview/")
    assert r.status_code == 302  # to the admin login


def test_rest_save_of_a_deeply_nested_script_is_a_located_400(client, admin_user):
    """Issue 16 item 10: "a 5,000-deep nested script gives a 500 on save" — through REST too."""
    import base64

    auth = {"HTTP_AUTHORIZATION": "Basic " + base64.b64encode(b"admin:admin-pass-1").decode()}
    text = 'version "6.1"\n(0010,0010) := ' + "lowercase[" * 5000 + '"x"' + "]" * 5000 + "\n"
    r = client.put("/data/config/anon/script?inbody=true", data=text, content_type="text/plain", **auth)
    assert r.status_code == 400
    assert r.content.decode().startswith("2:656: nested too deeply (more than 64 levels)")
    assert SiteConfig.objects.get(pk=1).sitewide_anonymization_script != text
