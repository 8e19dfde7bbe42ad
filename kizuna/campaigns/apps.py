from django.apps import AppConfig


class CampaignsConfig(AppConfig):
    name = "kizuna.campaigns"
    label = "campaigns"
    verbose_name = "Campaigns"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        import kizuna.campaigns.tasks  # noqa: F401  (tasks register with Huey)
        from kizuna.campaigns import models

        auditlog.register(models.Campaign, m2m_fields={"include_segments", "exclude_segments"})
        auditlog.register(models.Variant)
