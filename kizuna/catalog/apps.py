from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "kizuna.catalog"
    label = "catalog"
    verbose_name = "Catalog"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.catalog import models

        auditlog.register(models.Product)
        auditlog.register(models.Category)
