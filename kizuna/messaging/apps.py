from django.apps import AppConfig


class MessagingConfig(AppConfig):
    name = "kizuna.messaging"
    label = "messaging"
    verbose_name = "Messaging"

    def ready(self) -> None:
        import kizuna.messaging.community_reminders  # noqa: F401  (community reminders sent)
        from kizuna.messaging import context, tasks  # noqa: F401  (tasks register with Huey)

        context.register_builtin_providers()
        from django.apps import apps

        if apps.is_installed("kizuna.surveys"):  # {{ surveys["<slug>"] }}: a signed link
            from kizuna.surveys.links import template_links

            context.register_provider("surveys", template_links)
