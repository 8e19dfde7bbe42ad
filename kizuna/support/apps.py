from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "kizuna.support"
    label = "support"
    verbose_name = "Support"

    def ready(self) -> None:
        from auditlog.registry import auditlog
        from django.db.models.signals import post_delete, post_save

        from kizuna.core import events as bus
        from kizuna.support import faq, intake, models

        auditlog.register(models.Inquiry, exclude_fields=["updated_at"])
        auditlog.register(models.FaqArticle)
        auditlog.register(models.CannedAnswer)
        auditlog.register(models.SlaPolicy)
        bus.subscribe("line.message", intake.on_line_message)
        bus.subscribe("survey.detractor", intake.on_survey_detractor)
        bus.subscribe("journey.support_task_requested", intake.on_support_task_requested)
        for signal in (post_save, post_delete):
            signal.connect(faq.articles_changed, sender=models.FaqArticle, dispatch_uid="faq-idx")
