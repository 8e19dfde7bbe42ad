"""Extra sections of the customer 360 page, contributed by each domain's console module.

A domain (analytics scores, loyalty, surveys...) registers a panel once at start-up; the
customer 360 view renders every panel the staff user may see, in `order`, between the
purchase KPIs and the identities. A panel whose context function returns None is hidden.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from kizuna.customers.models import Customer

PanelContext = Callable[[HttpRequest, Customer], dict[str, Any] | None]


@dataclass(frozen=True)
class CustomerPanel:
    key: str
    template: str
    context: PanelContext
    permission: str | None = None
    order: int = 100


@dataclass(frozen=True)
class RenderedPanel:
    key: str
    template: str
    context: dict[str, Any]


_panels: dict[str, CustomerPanel] = {}


def register_customer_panel(panel: CustomerPanel) -> None:
    _panels[panel.key] = panel


def customer_panels(request: HttpRequest, customer: Customer) -> list[RenderedPanel]:
    shown = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.key)):
        if panel.permission and not request.user.has_perm(panel.permission):
            continue
        context = panel.context(request, customer)
        if context is not None:
            shown.append(RenderedPanel(panel.key, panel.template, context))
    return shown
