from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "kizuna.console"
    label = "console"
    verbose_name = "Staff console"

    def ready(self) -> None:
        from kizuna.console import (
            views_loyalty,
            views_messaging,
            views_privacy,
            views_segments,
            views_support,
            views_surveys,
        )

        views_loyalty.register_panels()
        views_messaging.register_panels()
        views_privacy.register_panels()
        views_segments.register_panels()
        views_surveys.register_panels()
        views_support.register_panels()
