from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "kizuna.console"
    label = "console"
    verbose_name = "Staff console"
