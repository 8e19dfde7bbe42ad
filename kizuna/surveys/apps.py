from django.apps import AppConfig


class SurveysConfig(AppConfig):
    name = "kizuna.surveys"
    label = "surveys"
    verbose_name = "Surveys"

    def ready(self) -> None:
        from kizuna.core import events as bus
        from kizuna.surveys import services

        bus.subscribe("customer.merged", services.customer_merged, in_transaction=True)
        bus.subscribe("customer.unmerged", services.customer_unmerged, in_transaction=True)
