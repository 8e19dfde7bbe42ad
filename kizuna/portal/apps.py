from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "kizuna.portal"
    label = "portal"
    verbose_name = "Customer portal"
