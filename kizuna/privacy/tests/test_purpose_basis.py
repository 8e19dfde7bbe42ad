"""No processing for a purpose without a basis (docs/privacy.md): `has_basis` reads the
consent ledger (granted → yes, withdrawn → no, nothing → the purpose's default basis), and
the processing paths ask it: analytics scoring leaves out a customer who objected,
recommendations for one who objected to personalisation use nothing personal, marketing
email is gated by messaging as before."""

from __future__ import annotations

from typing import Any

import pytest

from kizuna.analytics import sql
from kizuna.analytics.services import business_zone
from kizuna.core.timeutil import now
from kizuna.customers.selectors import basis_decisions, customer_get, has_basis
from kizuna.customers.services import consent_record
from kizuna.privacy.tests.conftest import World
from kizuna.recommendations import selectors as recommendations
from kizuna.recommendations.models import RunStatus, RunTrigger
from kizuna.recommendations.services import training_run_now
from kizuna.recommendations.tests.conftest import AS_OF, _isolated, shop  # noqa: F401


def _object(customer: Any, purpose: str, channel: str = "any") -> None:
    consent_record(
        customer=customer,
        purpose=purpose,
        channel=channel,
        status="withdrawn",
        source="portal",
        legal_basis="legitimate_interest",
    )


def test_has_basis_reads_the_ledger_and_the_default(world: World, settings: Any) -> None:
    subject, other = world.subject, world.other
    assert has_basis(customer=subject, purpose="analytics")  # legitimate interest by default
    assert has_basis(customer=subject, purpose="personalisation")
    assert not has_basis(customer=subject, purpose="third_party")  # needs a recorded basis
    assert has_basis(customer=subject, purpose="marketing", channel="email")  # granted
    assert not has_basis(customer=subject, purpose="marketing", channel="line")
    assert not has_basis(customer=other, purpose="marketing")

    _object(subject, "analytics")
    assert not has_basis(customer=subject, purpose="analytics")
    assert has_basis(customer=other.pk, purpose="analytics")
    default, decisions = basis_decisions(purpose="analytics")
    assert default is True and decisions == {subject.pk: False}

    consent_record(
        customer=subject, purpose="analytics", channel="any", status="granted", source="portal"
    )
    assert has_basis(customer=subject, purpose="analytics")

    settings.KIZUNA_DEFAULT_LEGAL_BASES = {}  # every purpose needs a recorded basis
    assert not has_basis(customer=other, purpose="analytics")
    assert has_basis(customer=subject, purpose="analytics")
    assert basis_decisions(purpose="analytics") == (False, {subject.pk: True})


def test_analytics_scoring_leaves_out_a_customer_who_objected(world: World, settings: Any) -> None:
    def scored() -> set[int]:
        purchases = sql.read_purchases(as_of=now(), currency="JPY", zone=business_zone())
        return {int(c) for c in purchases.customer_id}

    assert {world.subject.pk, world.other.pk} <= scored()
    _object(world.subject, "analytics")
    assert world.subject.pk not in scored() and world.other.pk in scored()
    settings.KIZUNA_DEFAULT_LEGAL_BASES = {}
    assert scored() == set()  # nobody has given analytics consent
    consent_record(
        customer=world.other, purpose="analytics", channel="any", status="granted", source="t"
    )
    assert scored() == {world.other.pk}


@pytest.mark.django_db
def test_recommendations_for_an_objection_use_nothing_personal(shop: Any) -> None:  # noqa: F811
    world = shop()
    run = training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF)
    assert run.status == RunStatus.SUCCEEDED, run.message
    coffee_lover = customer_get(customer_id=world.customers[0])
    tea_lover = customer_get(customer_id=world.customers[1])

    def skus(customer: Any) -> list[str]:
        result = recommendations.recommendations_for(customer=customer, n=5)
        assert result.items
        return [item.sku for item in result.items]

    personal = recommendations.recommendations_for(customer=coffee_lover, n=5)
    assert personal.fallback is None and personal.reason is None
    assert skus(coffee_lover) != skus(tea_lover)  # personal lists differ by taste

    _object(coffee_lover, "personalisation")
    _object(tea_lover, "personalisation")
    generic = recommendations.recommendations_for(customer=coffee_lover, n=5)
    assert generic.fallback == "popularity" and generic.reason == "no_basis"
    # Nothing of either history is used: both get the same overall popularity list.
    assert skus(coffee_lover) == skus(tea_lover)
