from django.apps import AppConfig


class CommunityConfig(AppConfig):
    name = "kizuna.community"
    label = "community"
    verbose_name = "Community"

    def ready(self) -> None:
        from kizuna.community import tasks  # noqa: F401  (periodic tasks register with Huey)
