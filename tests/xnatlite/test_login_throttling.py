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


STRANGER = {"REMOTE_ADDR": "203.0.113.66"}
ADMIN_DESK = {"REMOTE_ADDR": "10.1.2.3"}


def test_a_strangers_failures_do_not_lock_the_admin_out_from_another_address(client, admin_user, settings):
    """Throttling is by client address and user name together (issue 16 item 10)."""
    settings.LOGIN_FAILURE_LIMIT = 3
    for _ in range(10):
        assert client.get("/data/auth", **basic("admin", "guess"), **STRANGER).status_code in (401, 429)
    # The stranger is held off, even with the right password ...
    assert client.get("/data/auth", **basic("admin", "admin-pass-1"), **STRANGER).status_code == 429
    # ... and the admin, from their own address, is not.
    assert client.get("/data/auth", **basic("admin", "admin-pass-1"), **ADMIN_DESK).status_code == 200
    r = client.post("/admin/login/", {"username": "admin", "password": "admin-pass-1"}, **ADMIN_DESK)
    assert r.status_code == 302 and "_auth_user_id" in client.session
    client.logout()
    r = client.put("/data/services/auth", "username=admin&password=admin-pass-1",
                   content_type="application/x-www-form-urlencoded", **ADMIN_DESK)
    assert r.status_code == 200


def test_case_variants_of_a_user_name_share_one_counter(client, admin_user, settings):
    settings.LOGIN_FAILURE_LIMIT = 3
    for name in ("ADMIN", "Admin", "aDmIn"):
        client.get("/data/auth", **basic(name, "guess"), **STRANGER)
    assert client.get("/data/auth", **basic("admin", "admin-pass-1"), **STRANGER).status_code == 429
    assert client.get("/data/auth", **basic("admin", "admin-pass-1"), **ADMIN_DESK).status_code == 200


def test_other_users_from_the_strangers_address_are_not_locked(client, admin_user, member, settings):
    settings.LOGIN_FAILURE_LIMIT = 2
    for _ in range(3):
        client.get("/data/auth", **basic("admin", "guess"), **STRANGER)
    assert client.get("/data/auth", **basic("mike", "mike-pass-1"), **STRANGER).status_code == 200
