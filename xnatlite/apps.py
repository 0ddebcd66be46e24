from __future__ import annotations

from django.apps import AppConfig


class XnatliteConfig(AppConfig):
    name = "xnatlite"
    verbose_name = "xnatlite"
