"""Site admins create projects, set their import and anonymization settings and manage members in the admin."""
from __future__ import annotations

from xnatlite.models import Project, ProjectMember

FORMSETS = {"aliases-TOTAL_FORMS": "1", "aliases-INITIAL_FORMS": "0", "aliases-0-alias": "OLDNAME",
            "memberships-TOTAL_FORMS": "1", "memberships-INITIAL_FORMS": "0"}


def _form(**overrides):
    data = {"id": "STUDY7", "name": "Study seven", "description": "", "prearchive_code": "0",
            "quarantine_code": "1", "anon_script_enabled": "on", "anon_script": 'version "6.1"\n-(0010,0030)\n',
            "series_import_filter_enabled": "on", "series_import_filter_mode": "blacklist",
            "series_import_filter": "LOCALIZER\n", "pet_tracers": "", "pet_mr": "separate",
            "allow_create_subject": "on", "allow_bulk_upload": "on", "default_subject_labeling_scheme": "",
            "default_session_labeling_scheme": "", **FORMSETS}
    data.update(overrides)
    return data


def test_admin_creates_project_with_settings_alias_and_member(admin_client, admin_user, django_user_model):
    user = django_user_model.objects.create_user("uma", password="uma-pass-1")
    r = admin_client.post("/admin/xnatlite/project/add/",
                          _form(**{"memberships-0-user": str(user.pk), "memberships-0-role": "member"}))
    assert r.status_code == 302, r.context["adminform"].form.errors if r.context else r
    p = Project.objects.get(pk="STUDY7")
    assert (p.prearchive_code, p.quarantine_code, p.pet_mr) == (0, 1, "separate")
    assert p.anon_script_enabled and p.series_import_filter_enabled
    assert p.aliases.get().alias == "OLDNAME"
    assert ProjectMember.objects.get(project=p, user=user).role == "member"


def test_admin_refuses_bad_project_id_and_bad_filter(admin_client, admin_user):
    r = admin_client.post("/admin/xnatlite/project/add/", _form(id="bad id!", series_import_filter="(unclosed\n"))
    assert r.status_code == 200
    errors = r.context["adminform"].form.errors
    assert "id" in errors
    assert "line 1" in str(errors["series_import_filter"])
    assert not Project.objects.exists()


def _site(**values):
    from xnatlite.models import SiteConfig
    from xnatlite.selectors import site_config_get

    config = site_config_get()
    SiteConfig.objects.filter(pk=config.pk).update(**values)


def test_the_add_form_starts_with_the_sites_default_prearchive_code(admin_client, admin_user):
    """Issue 14 item 8: defaultProjectAutoArchiveSetting, as a REST-created project gets it."""
    for code in (0, 5):
        _site(default_project_auto_archive_setting=code)
        page = admin_client.get("/admin/xnatlite/project/add/")
        assert page.context["adminform"].form.initial["prearchive_code"] == code
        assert f'<option value="{code}" selected>' in page.content.decode()


def test_auto_archive_codes_are_refused_when_the_site_does_not_allow_them(admin_client, admin_user):
    from xnatlite.forms import MSG_NO_AUTO_ARCHIVE

    _site(project_allow_auto_archive=False, default_project_auto_archive_setting=0)
    for code in ("4", "5"):
        r = admin_client.post("/admin/xnatlite/project/add/", _form(prearchive_code=code))
        assert r.status_code == 200
        assert r.context["adminform"].form.errors["prearchive_code"] == [MSG_NO_AUTO_ARCHIVE]
    assert not Project.objects.exists()
    assert admin_client.post("/admin/xnatlite/project/add/", _form()).status_code == 302
    change = {k: v for k, v in _form(prearchive_code="4").items() if k != "id"}
    change.update({"aliases-TOTAL_FORMS": "0", "aliases-INITIAL_FORMS": "0"})
    r = admin_client.post("/admin/xnatlite/project/STUDY7/change/", change)
    assert r.status_code == 200 and "prearchive_code" in r.context["adminform"].form.errors
    assert Project.objects.get(pk="STUDY7").prearchive_code == 0
    # A project that auto-archived before the site changed its mind can still have its other settings edited.
    Project.objects.filter(pk="STUDY7").update(prearchive_code=4)
    r = admin_client.post("/admin/xnatlite/project/STUDY7/change/", dict(change, name="renamed"))
    assert r.status_code == 302, r.context["adminform"].form.errors
    assert Project.objects.get(pk="STUDY7").name == "renamed"


def test_rest_prearchive_code_is_refused_when_the_site_does_not_allow_auto_archive(admin_client, admin_user):
    Project.objects.create(id="P9", prearchive_code=0)
    _site(project_allow_auto_archive=False, default_project_auto_archive_setting=0)
    r = admin_client.put("/data/projects/P9/prearchive_code/4")
    assert r.status_code in (400, 403, 409), r.content
    assert Project.objects.get(pk="P9").prearchive_code == 0
