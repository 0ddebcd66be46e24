from django.apps import AppConfig


class AnonymizationConfig(AppConfig):
    name = "anonymization"
    verbose_name = "Anonymization"
