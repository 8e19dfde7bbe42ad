"""Reactions to other apps' events: a new or re-linked profile whose email, phone or LINE
id belongs to an erased person gets its marketing consent withdrawn at once (and messaging's
suppression list, filled at erasure, already refuses to send to the address)."""

from __future__ import annotations

import logging

from kizuna.core import events as bus

logger = logging.getLogger(__name__)


def _check_profile(event: bus.DomainEvent) -> None:
    from kizuna.customers.models import Customer
    from kizuna.customers.services import consent_record
    from kizuna.privacy.services import identifiers, is_erased_identifier

    if event.customer_id is None:
        return
    customer = Customer.objects.filter(pk=event.customer_id).first()
    if customer is None:
        return
    if not any(is_erased_identifier(kind, value) for kind, value in identifiers([customer.pk])):
        return
    logger.info("customer %s matches an erased person: marketing consent withdrawn", customer.pk)
    consent_record(
        customer=customer,
        purpose="marketing",
        channel="any",
        status="withdrawn",
        source="privacy",
        legal_basis="legal_obligation",
        evidence={"reason": "matches an erased data subject"},
    )


def register() -> None:
    for event_type in ("customer.created", "identity.linked", "customer.updated"):
        bus.subscribe(event_type, _check_profile)
