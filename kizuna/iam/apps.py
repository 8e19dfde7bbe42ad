from django.apps import AppConfig
from django.db.models.signals import post_migrate


class IamConfig(AppConfig):
    name = "kizuna.iam"
    label = "iam"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        from kizuna.iam.services import roles_sync

        # Setup hook, not domain flow: groups follow ROLE_PERMISSIONS after each migrate.
        post_migrate.connect(
            lambda **kwargs: roles_sync(), dispatch_uid="kizuna.iam.roles_sync", weak=False
        )
