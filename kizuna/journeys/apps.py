from django.apps import AppConfig


class JourneysConfig(AppConfig):
    name = "kizuna.journeys"
    label = "journeys"
    verbose_name = "Journeys"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        import kizuna.journeys.tasks  # noqa: F401  (tasks register with Huey)
        from kizuna.journeys import models, subscribers

        auditlog.register(models.Journey)
        subscribers.register()
