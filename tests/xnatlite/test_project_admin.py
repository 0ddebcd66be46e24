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
