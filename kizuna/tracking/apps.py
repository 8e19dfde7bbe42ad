from django.apps import AppConfig


class TrackingConfig(AppConfig):
    name = "kizuna.tracking"
    label = "tracking"
    verbose_name = "Tracking"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.tracking import models

        auditlog.register(models.Source, exclude_fields=["write_key_digest"])

        from django.db.models.signals import post_migrate

        # Setup hook: `migrate` of the main database also migrates the inbox's own database.
        post_migrate.connect(_migrate_inbox, sender=self, dispatch_uid="kizuna.tracking.inbox")


def _migrate_inbox(*, using: str, **kwargs: object) -> None:
    from django.conf import settings
    from django.core.management import call_command

    from kizuna.tracking.routers import INBOX

    if using != INBOX and INBOX in settings.DATABASES:
        call_command("migrate", database=INBOX, verbosity=0, interactive=False)
