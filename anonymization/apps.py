from django.apps import AppConfig


class AnonymizationConfig(AppConfig):
    name = "anonymization"
    verbose_name = "Anonymization"

    def ready(self) -> None:
        from anonymization.services import grants_signals_connect

        grants_signals_connect()
