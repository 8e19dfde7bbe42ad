from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "kizuna.api"
    label = "api"
    verbose_name = "REST API"
