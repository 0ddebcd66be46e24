"""The Celery application: configured from Django settings (CELERY_ namespace)."""
from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xnatlite.settings")

app = Celery("xnatlite")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
