from django.apps import AppConfig


class PrearchiveConfig(AppConfig):
    name = "prearchive"
    verbose_name = "Prearchive"

    def ready(self) -> None:
        from celery.signals import worker_ready

        from .tasks import reload_on_startup

        worker_ready.connect(reload_on_startup, weak=False, dispatch_uid="prearchive.reload_on_startup")
