from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import m2m_changed, post_delete, post_migrate, post_save


class IamConfig(AppConfig):
    name = "kizuna.iam"
    label = "iam"
    verbose_name = "Identity and access"

    def ready(self) -> None:
        from django.contrib.auth.models import Group, Permission

        from kizuna.iam.selectors import role_permissions_clear
        from kizuna.iam.services import roles_sync

        # Setup hook, not domain flow: groups follow ROLE_PERMISSIONS after each migrate.
        # post_migrate is sent once per app; the groups are synced once, after the last app's
        # permissions exist (not once per app: a test's flush sends it too).
        def sync(*, app_config: AppConfig, **kwargs: Any) -> None:
            with_models = [c for c in apps.get_app_configs() if c.models_module is not None]
            if app_config is with_models[-1]:
                roles_sync()

        post_migrate.connect(sync, dispatch_uid="kizuna.iam.roles_sync", weak=False)

        # The per-process cache of each role's permissions (kizuna.iam.selectors) is emptied
        # as soon as a group or its permissions change in this process.
        def clear(**kwargs: Any) -> None:
            role_permissions_clear()

        m2m_changed.connect(
            clear, sender=Group.permissions.through, dispatch_uid="kizuna.iam.roles_m2m", weak=False
        )
        for signal, sender in ((post_save, Group), (post_delete, Group), (post_delete, Permission)):
            signal.connect(
                clear,
                sender=sender,
                dispatch_uid=f"kizuna.iam.roles_{signal is post_save}_{sender.__name__}",
                weak=False,
            )
