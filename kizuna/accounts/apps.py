from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "kizuna.accounts"
    label = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.accounts import models

        for model in (models.Account, models.Pipeline, models.Stage, models.Deal):
            auditlog.register(model)
