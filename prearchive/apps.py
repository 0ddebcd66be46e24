from django.apps import AppConfig


class PrearchiveConfig(AppConfig):
    name = "prearchive"
    verbose_name = "Prearchive"
