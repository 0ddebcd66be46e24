"""Template context every page needs: the site's UI switches (read once per page, only when a template asks)."""
from __future__ import annotations

from django.utils.functional import SimpleLazyObject


def site_ui(request) -> dict:
    def read():
        from .selectors import site_config_get

        return site_config_get()

    return {"site_ui": SimpleLazyObject(read)}
