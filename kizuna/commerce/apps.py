from django.apps import AppConfig


class CommerceConfig(AppConfig):
    name = "kizuna.commerce"
    label = "commerce"
    verbose_name = "Commerce"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.commerce import models

        auditlog.register(models.Order)
        auditlog.register(models.Refund)

        from kizuna.commerce import export, subscribers

        subscribers.register()
        export.register()
