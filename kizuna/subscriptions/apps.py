from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "kizuna.subscriptions"
    label = "subscriptions"
    verbose_name = "Subscriptions"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.subscriptions import models

        auditlog.register(models.Plan)
        auditlog.register(models.Subscription)
