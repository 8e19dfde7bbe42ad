from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "kizuna.privacy"
    label = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.privacy import models, subscribers

        auditlog.register(models.PurposeNotice)
        subscribers.register()
