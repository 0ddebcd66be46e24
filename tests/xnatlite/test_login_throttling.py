from __future__ import annotations

import pytest
from django.core.cache import cache

from tests.xnatlite.test_site_config_api import basic


@pytest.fixture(autouse=True)
def _clear_cache():
    cache.clear()
    yield
    cache.clear()


def test_basic_auth_is_throttled_after_repeated_failures(client, admin_user, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(3):
        assert client.get("/data/auth", **basic("admin", "guess")).status_code == 401
    # Now even the right password is refused until the window passes.
    r = client.get("/data/auth", **basic("admin", "admin-pass-1"))
    assert r.status_code == 429
    assert b"Too many failed logins" in r.content
    cache.clear()
    assert client.get("/data/auth", **basic("admin", "admin-pass-1")).status_code == 200


def test_admin_login_page_is_throttled(client, admin_user, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(2):
        client.post("/admin/login/", {"username": "admin", "password": "guess"})
    r = client.post("/admin/login/", {"username": "admin", "password": "admin-pass-1"})
    assert r.status_code == 200  # the form again, not a redirect into the admin
    assert "_auth_user_id" not in client.session


def test_success_resets_the_counter(client, admin_user, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(2):
        client.get("/data/auth", **basic("admin", "guess"))
    assert client.get("/data/auth", **basic("admin", "admin-pass-1")).status_code == 200
    for _ in range(2):
        client.get("/data/auth", **basic("admin", "guess"))
    assert client.get("/data/auth", **basic("admin", "admin-pass-1")).status_code == 200
