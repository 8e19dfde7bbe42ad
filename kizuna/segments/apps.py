from django.apps import AppConfig


class SegmentsConfig(AppConfig):
    name = "kizuna.segments"
    label = "segments"
    verbose_name = "Segments"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.segments import models, subscribers

        auditlog.register(models.Segment)
        subscribers.register()
