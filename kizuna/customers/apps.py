from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "kizuna.customers"
    label = "customers"
    verbose_name = "Customers"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.customers import models

        auditlog.register(models.Customer)
        auditlog.register(models.TraitDefinition)
        auditlog.register(models.Identity)
        auditlog.register(models.CustomerMerge)
