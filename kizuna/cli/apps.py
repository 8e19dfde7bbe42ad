from django.apps import AppConfig


class CliConfig(AppConfig):
    name = "kizuna.cli"
    label = "cli"
    verbose_name = "Command line"
