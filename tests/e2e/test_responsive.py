"""Every page the navigation reaches, at 390 px wide in headless Chromium: nothing is wider than the
viewport (tables scroll in their own container), every input/select/textarea/button has an accessible name;
error pages are styled with the navigation; the favicon exists."""
from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.test import Client

from prearchive.services.archive import session_archive, session_archive_request
from tests.archive.conftest import ready_session
from tests.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
WIDTH = 390
SKIP = ("/admin/", "/static/", "/media/", "download", "/logout", ".png", ".zip", "/data/", "/xapi/")
MAX_PAGES = 60

UNLABELLED = """() => {
  const bad = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea, button')) {
    const name = (el.labels && [...el.labels].map(l => l.textContent).join(' ').trim())
      || (el.getAttribute('aria-label') || '').trim()
      || (el.getAttribute('aria-labelledby') && [...el.getAttribute('aria-labelledby').split(/\\s+/)]
            .map(id => (document.getElementById(id) || {}).textContent || '').join(' ').trim())
      || (el.getAttribute('title') || '').trim()
      || ((el.tagName === 'BUTTON') ? el.textContent.trim() : '')
      || ((el.type === 'submit' || el.type === 'button' || el.type === 'reset') ? (el.value || '').trim() : '');
    if (!name) bad.push(el.outerHTML.slice(0, 120));
  }
  return bad;
}"""


def _sign_in(page, live_server, user) -> None:
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": settings.SESSION_COOKIE_NAME, "url": live_server.url,
                               "value": client.cookies[settings.SESSION_COOKIE_NAME].value}])


def _crawl(page, live_server, start: list[str]) -> dict[str, tuple[int, list[str]]]:
    """Visit the start pages, the navigation's links and the links of every page visited (same site)."""
    seen: dict[str, tuple[int, list[str]]] = {}
    queue = list(start)
    while queue and len(seen) < MAX_PAGES:
        path = queue.pop(0)
        if path in seen:
            continue
        page.goto(live_server.url + path)
        page.wait_for_load_state("load")
        width = page.evaluate("document.documentElement.scrollWidth")
        seen[path] = (width, page.evaluate(UNLABELLED))
        for href in page.eval_on_selector_all("a[href]", "els => els.map(a => a.getAttribute('href'))"):
            url = urlparse(href)
            if url.netloc and url.netloc != urlparse(live_server.url).netloc:
                continue
            target = url.path if url.path.startswith("/") else None
            if not target or any(s in target for s in SKIP):
                continue
            target += f"?{url.query}" if url.query and "sort=" not in url.query else ""
            if target not in seen and target not in queue:
                queue.append(target)
    return seen


def test_every_page_fits_390_px_and_every_control_has_a_name(live_server, browser_page, site, owner, project,
                                                             admin_user):
    ready_session(project="PROJ1", subject="SUBJ_R", label="SESS_READY", series=((1, "MR", 3), (2, "MR", 2)))
    archived = ready_session(project="PROJ1", subject="SUBJ_A", label="SESS_ARCHIVED")
    session_archive_request(session=archived, actor="olivia")
    assert session_archive(session_id=archived.pk) == "archived"

    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 800})
    _sign_in(page, live_server, owner)
    seen = _crawl(page, live_server, ["/prearchive/"])
    for must in ("/prearchive/", "/archive/", "/projects/", "/projects/PROJ1/manage/", "/upload/client/",
                 "/upload/client/transfers/", "/upload/history/", "/archive/PROJ1/sessions/SESS_ARCHIVED/"):
        assert must in seen, sorted(seen)
    assert len(seen) >= 12, sorted(seen)
    too_wide = {p: w for p, (w, _) in seen.items() if w > WIDTH}
    unnamed = {p: bad for p, (_, bad) in seen.items() if bad}
    assert not too_wide, too_wide
    assert not unnamed, unnamed
    page.goto(live_server.url + "/prearchive/")
    screenshot(page, "responsive_390_prearchive")
    # The top bar's links are readable: their colour differs from the background behind them.
    colours = page.evaluate("""() => [...document.querySelectorAll('header a, header button')].map(a => {
        const r = a.getBoundingClientRect(); const el = document.elementFromPoint(r.left + 2, r.top + r.height / 2);
        let bg = el; while (bg && getComputedStyle(bg).backgroundColor === 'rgba(0, 0, 0, 0)') bg = bg.parentElement;
        return [getComputedStyle(a).color, bg ? getComputedStyle(bg).backgroundColor : 'none', r.right <= window.innerWidth];
      })""")
    assert colours and all(fg != bg and fits for fg, bg, fits in colours), colours

    # The site admin's pages too (the Django admin itself is Django's).
    page.context.clear_cookies()
    _sign_in(page, live_server, admin_user)
    seen = _crawl(page, live_server, ["/prearchive/", "/projects/"])
    too_wide = {p: w for p, (w, _) in seen.items() if w > WIDTH}
    unnamed = {p: bad for p, (_, bad) in seen.items() if bad}
    assert not too_wide and not unnamed, (too_wide, unnamed)


def test_error_pages_are_styled_with_navigation_and_the_favicon_exists(live_server, browser_page, site, member):
    page = browser_page
    page.set_viewport_size({"width": WIDTH, "height": 800})
    _sign_in(page, live_server, member)
    response = page.goto(live_server.url + "/prearchive/999999/")
    assert response.status == 404
    assert page.locator("header.topbar a[href='/prearchive/']").count() == 1
    assert "could not be found" in page.inner_text("main")
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    screenshot(page, "error_404_390")
    response = page.goto(live_server.url + "/projects/PROJ1/manage/")
    assert response.status == 403
    assert page.locator("header.topbar a[href='/projects/']").count() == 1
    assert "not allowed" in page.inner_text("main")
    icon = page.request.get(live_server.url + "/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/")
    page.goto(live_server.url + "/prearchive/")
    href = page.get_attribute("link[rel=icon]", "href")
    assert page.request.get(live_server.url + href).status == 200


def test_the_500_page_renders_with_navigation(client, settings):
    from django.template import loader

    html = loader.get_template("500.html").render({})
    assert "Something went wrong" in html and 'class="topbar"' in html and "/prearchive/" in html
