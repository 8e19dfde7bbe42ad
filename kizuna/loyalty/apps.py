from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "kizuna.loyalty"
    label = "loyalty"
    verbose_name = "Loyalty"

    def ready(self) -> None:
        from auditlog.registry import auditlog
        from django.db.models.signals import post_delete, post_migrate, post_save

        from kizuna.core import events as bus
        from kizuna.loyalty import export, models, services

        auditlog.register(models.Programme)
        auditlog.register(models.Tier)
        auditlog.register(models.Reward)
        auditlog.register(models.CouponDefinition)
        bus.subscribe("order.placed", services.on_order_placed)
        bus.subscribe("order.refunded", services.on_order_refunded)
        bus.subscribe_many(bus.WILDCARD, services.on_engagement_events)
        # The event-points snapshot of that subscriber is forgotten when the programme
        # changes (post_migrate: also after a test's flush of the tables).
        for signal in (post_save, post_delete):
            signal.connect(
                services.programme_changed, sender=models.Programme, dispatch_uid="loyalty-prog"
            )
        post_migrate.connect(services.programme_changed, dispatch_uid="loyalty-prog-migrate")
        bus.subscribe("customer.merged", services.customer_merged, in_transaction=True)
        bus.subscribe("customer.unmerged", services.customer_unmerged, in_transaction=True)
        export.register()  # the loyalty part of the per-customer privacy export
