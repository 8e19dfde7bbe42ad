from django.apps import AppConfig


class LineMarketingConfig(AppConfig):
    name = "kizuna.line_marketing"
    label = "line_marketing"
    verbose_name = "LINE marketing"
