"""Start-up work for one installation: the beat entry of the idle checker at the configured interval,
then any app's start-up hooks (e.g. reloading the prearchive database when the site asks for it)."""
from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand

from xnatlite.services import idle_schedule_sync


class Command(BaseCommand):
    help = "Run xnatlite's start-up tasks."

    def handle(self, *args, **options) -> None:
        idle_schedule_sync()
        self.stdout.write("idle checker schedule synchronised")
        for config in apps.get_app_configs():
            hook = getattr(config, "on_startup", None)
            if callable(hook):
                hook()
                self.stdout.write(f"{config.label}: start-up hook done")
