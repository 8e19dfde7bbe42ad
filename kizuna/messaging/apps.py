from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "kizuna.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        from kizuna.messaging import context, tasks  # noqa: F401  (tasks register with Huey)

        context.register_builtin_providers()
