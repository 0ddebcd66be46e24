from __future__ import annotations

from django.apps import AppConfig


class XnatliteConfig(AppConfig):
    name = "xnatlite"
    verbose_name = "xnatlite"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
