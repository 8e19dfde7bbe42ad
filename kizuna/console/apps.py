from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "kizuna.console"
    label = "console"
    verbose_name = "Staff console"
    # The customer 360 page's panels are registered when it is first rendered
    # (`panels.contributed_panels_load`), not here: every process would load the console.
