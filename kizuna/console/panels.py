"""Extra sections of the customer 360 page, contributed by each domain's console module.

A domain (analytics scores, loyalty, surveys...) registers a panel once; the customer 360
view renders every panel the staff user may see, in `order`, between the purchase KPIs and
the identities. A panel whose context function returns None is hidden.

The console modules contributing panels are imported, and register theirs, when the page is
first rendered: importing them at start-up loaded the console's views and Plotly into every
process (each CLI command, the worker), about 0.1-0.2 s of CPU.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import import_module
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
# The console modules whose `register_panels()` contributes panels.
CONTRIBUTORS = (
    "views_accounts",
    "views_analytics",
    "views_loyalty",
    "views_messaging",
    "views_privacy",
    "views_recommendations",
    "views_segments",
    "views_subscriptions",
    "views_surveys",
    "views_support",
)


@cache
def contributed_panels_load() -> None:
    """Import the contributing modules and register their panels, once per process (two
    threads doing it at once register the same panels: registering is idempotent)."""
    for name in CONTRIBUTORS:
        import_module(f"kizuna.console.{name}").register_panels()


def register_customer_panel(panel: CustomerPanel) -> None:
    _panels[panel.key] = panel


def customer_panels(request: HttpRequest, customer: Customer) -> list[RenderedPanel]:
    contributed_panels_load()
    shown = []
    for panel in sorted(_panels.values(), key=lambda p: (p.order, p.key)):
        if panel.permission and not request.user.has_perm(panel.permission):
            continue
        context = panel.context(request, customer)
        if context is not None:
            shown.append(RenderedPanel(panel.key, panel.template, context))
    return shown
