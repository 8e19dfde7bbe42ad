from django.apps import AppConfig


class DataioConfig(AppConfig):
    name = "kizuna.dataio"
    label = "dataio"
    verbose_name = "Data in and out"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.dataio import models

        auditlog.register(models.ImportJob, exclude_fields=["errors", "rows_done"])
