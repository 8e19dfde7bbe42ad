from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "kizuna.tracking"
    label = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.tracking import models

        auditlog.register(models.Source, exclude_fields=["write_key_digest"])
