"""Template helpers: the customer's recommended products as plain data, and a LINE Flex
carousel, callable from a sandboxed Jinja template as messaging renders them."""

from __future__ import annotations

import json

import pytest
from jinja2 import StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from kizuna.customers.models import Customer
from kizuna.customers.services import customer_create
from kizuna.recommendations import services, templating
from kizuna.recommendations.models import RunTrigger
from kizuna.recommendations.tests.conftest import AS_OF

pytestmark = pytest.mark.django_db


def test_templates_call_recommendations_and_get_plain_products(shop, settings):
    world = shop()
    services.training_run_now(trigger=RunTrigger.CLI, as_of=AS_OF, evaluate=False)
    settings.KIZUNA_RECOMMENDATIONS_PRODUCT_URL = "https://shop.example/p/{sku}"
    customer = Customer.objects.get(pk=world.customers[0])
    env = SandboxedEnvironment(undefined=StrictUndefined)
    context = {
        "customer": {"id": customer.pk},
        "recommendations": templating.list_function(customer),
        "recommendation_carousel": templating.carousel_function(customer),
    }
    text = env.from_string(
        "{% for p in recommendations(customer, 2) %}{{ p.sku }}={{ p.price }};{% endfor %}"
    ).render(context)
    parts = [p for p in text.split(";") if p]
    assert len(parts) == 2 and parts[0].startswith("C")
    flex = json.loads(env.from_string("{{ recommendation_carousel(customer, 3) }}").render(context))
    assert flex["type"] == "carousel" and len(flex["contents"]) == 3
    bubble = flex["contents"][0]
    assert bubble["type"] == "bubble" and bubble["action"]["uri"].startswith(
        "https://shop.example/p/"
    )
    texts = [c["text"] for c in bubble["body"]["contents"]]
    assert texts[1].startswith("¥")


def test_an_untrained_installation_renders_an_empty_list_and_a_text_bubble(db):
    customer = customer_create(data={"family_name": "新規"})
    assert templating.list_function(customer)(None, 3) == []
    flex = json.loads(templating.carousel_function(customer)(None, 3, "おすすめは準備中です"))
    assert flex["type"] == "bubble"
    assert flex["body"]["contents"][0]["text"] == "おすすめは準備中です"
    assert templating.product_url("X") == ""
