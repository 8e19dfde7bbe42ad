from django.apps import AppConfig


class PrivacyConfig(AppConfig):
    name = "kizuna.privacy"
    label = "privacy"
    verbose_name = "Privacy"

    def ready(self) -> None:
        from auditlog.registry import auditlog

        from kizuna.iam.masking import set_known_names_resolver
        from kizuna.privacy import models, selectors, subscribers

        auditlog.register(models.PurposeNotice)
        subscribers.register()
        # Masked API schemas mask a customer's own names inside free text (docs/privacy.md).
        set_known_names_resolver(selectors.customer_names)
