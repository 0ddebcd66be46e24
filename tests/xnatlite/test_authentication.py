"""The three ways in: HTTP Basic, the Django session, and the JSESSIONID token of /data/JSESSION."""
from __future__ import annotations

import pytest
from django.test import Client

from tests.xnatlite.test_site_config_api import basic


def test_basic_auth(client, admin_user):
    r = client.get("/data/auth", **basic("admin", "admin-pass-1"))
    assert r.status_code == 200
    assert r.content.decode() == "User 'admin' is logged in"


def test_django_session_login_reads_and_needs_csrf_to_write(admin_user):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(admin_user)
    assert browser.get("/xapi/siteConfig/receivedFileUser").status_code == 200
    r = browser.post("/xapi/siteConfig/sessionXmlRebuilderInterval", "3", content_type="text/plain")
    assert r.status_code == 403  # no CSRF token
    browser.get("/admin/")  # sets the csrftoken cookie
    token = browser.cookies["csrftoken"].value
    r = browser.post("/xapi/siteConfig/sessionXmlRebuilderInterval", "3", content_type="text/plain",
                     HTTP_X_CSRFTOKEN=token)
    assert r.status_code == 200, r.content


@pytest.mark.parametrize("method", ["post", "get"])
def test_jsession_token_works_as_cookie_and_delete_ends_it(admin_user, method):
    client = Client(enforce_csrf_checks=True)
    r = getattr(client, method)("/data/JSESSION", **basic("admin", "admin-pass-1"))
    assert r.status_code == 200
    token = r.content.decode().strip()
    assert len(token) >= 20
    xnat_client = Client(enforce_csrf_checks=True)
    xnat_client.cookies["JSESSIONID"] = token
    assert xnat_client.get("/data/auth").content.decode() == "User 'admin' is logged in"
    # A token session is an API client: writes need no CSRF token.
    r = xnat_client.post("/xapi/siteConfig/sessionXmlRebuilderInterval", "4", content_type="text/plain")
    assert r.status_code == 200, r.content
    assert xnat_client.delete("/data/JSESSION").status_code == 200
    assert xnat_client.get("/data/auth").status_code == 401
    third = Client()
    third.cookies["JSESSIONID"] = token
    assert third.get("/data/auth").status_code == 401


def test_services_auth_put_answers_a_token(admin_user):
    client = Client()
    r = client.put("/data/services/auth", "username=admin&password=admin-pass-1",
                   content_type="application/x-www-form-urlencoded")
    assert r.status_code == 200
    other = Client()
    other.cookies["JSESSIONID"] = r.content.decode().strip()
    assert other.get("/data/auth").status_code == 200
    bad = Client().put("/data/services/auth", "username=admin&password=nope",
                       content_type="application/x-www-form-urlencoded")
    assert bad.status_code == 401


def test_anonymous_jsession_is_401(client, db):
    assert client.post("/data/JSESSION").status_code == 401
