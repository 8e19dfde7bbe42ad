"""Write a generated demo business into the database through the bulk loaders, and keep the
demo staff logins."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connections, router, transaction

from kizuna.catalog.bulk import CategoryRow, catalog_bulk_load
from kizuna.commerce.bulk import (
    LineRow,
    OrderRow,
    RefundRow,
    orders_bulk_place,
    refunds_bulk_create,
)
from kizuna.commerce.models import Order
from kizuna.customers.bulk import (
    ConsentRow,
    CustomerRow,
    EventRow,
    IdentityRow,
    consents_bulk_record,
    customers_bulk_create,
    events_bulk_record,
    identities_bulk_add,
)
from kizuna.customers.models import Customer, TraitDefinition
from kizuna.customers.services import trait_definition_create
from kizuna.demo import accounts as demo_accounts
from kizuna.demo import analytics as demo_analytics
from kizuna.demo import business as biz
from kizuna.demo import journeys as demo_journeys
from kizuna.demo import loyalty as demo_loyalty
from kizuna.demo import recommendations as demo_recommendations
from kizuna.demo import segments as demo_segments
from kizuna.demo import support as demo_support
from kizuna.demo import surveys as demo_surveys
from kizuna.demo.generate import DemoData
from kizuna.iam.services import roles_sync, staff_user_create, staff_user_reset

# step name -> (rows done) callback; the command turns these into progress bars.
Advance = Callable[[str, int], None]
DEMO_USERNAME = "demo"
ROLE_USERS = {"marketer": "demo-marketer", "analyst": "demo-analyst", "support": "demo-support"}
LOGIN_FILE = "demo-login.txt"


def is_loaded() -> bool:
    """True when the demo business is in the database (its order numbers are the marker)."""
    return Order.objects.filter(number__startswith=biz.ORDER_PREFIX, source=biz.SOURCE).exists()


def has_other_data() -> bool:
    return Customer.objects.exists()


def step_sizes(data: DemoData) -> dict[str, int]:
    """How many rows each load step writes (for the progress bars)."""
    return {
        "catalog": len(biz.MENU),
        "customers": len(data.customers),
        "identities": sum(1 for c in data.customers if c.line_user_id),
        "consents": sum(len(c.consents) for c in data.customers),
        "orders": len(data.orders),
        "refunds": len(data.refunds),
        "events": len(data.events),
    }


@dataclass
class LoadTimings:
    seconds: dict[str, float] = field(default_factory=dict)


def load(data: DemoData, *, advance: Advance | None = None) -> LoadTimings:
    """Write `data` in one transaction: all of the demo business, or nothing."""
    timings = LoadTimings()

    def step(name: str) -> Callable[[int], None]:
        return lambda n: advance(name, n) if advance is not None else None

    def timed(name: str, started: float) -> None:
        timings.seconds[name] = time.perf_counter() - started

    connection = connections[router.db_for_write(Customer)]
    if connection.vendor == "sqlite":
        # A larger page cache for this connection keeps the indexes in memory while
        # hundreds of thousands of rows go in (the default is 2 MB).
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA cache_size = -262144")
    with transaction.atomic():
        started = time.perf_counter()
        existing_traits = set(TraitDefinition.objects.values_list("key", flat=True))
        for trait in biz.TRAITS:
            if trait["key"] not in existing_traits:
                trait_definition_create(**trait)
        catalog_bulk_load(
            categories=[CategoryRow(slug, name, name_en) for slug, name, name_en in biz.CATEGORIES],
            products=[
                {
                    "sku": m.sku,
                    "name": m.name,
                    "name_en": m.name_en,
                    "category": m.category,
                    "price_minor": m.price,
                    "currency": "JPY",
                }
                for m in biz.MENU
            ],
        )
        step("catalog")(len(biz.MENU))
        timed("catalog", started)

        started = time.perf_counter()
        ids = customers_bulk_create(
            rows=[CustomerRow(data=c.data, created_at=c.created_at) for c in data.customers],
            source=biz.SOURCE,
            progress=step("customers"),
        )
        timed("customers", started)

        started = time.perf_counter()
        identities_bulk_add(
            rows=[
                IdentityRow(
                    customer_id=ids[i],
                    kind="line",
                    value=c.line_user_id,
                    linked_at=c.line_linked_at,
                    source="line",
                )
                for i, c in enumerate(data.customers)
                if c.line_user_id and c.line_linked_at is not None
            ],
            progress=step("identities"),
        )
        timed("identities", started)

        started = time.perf_counter()
        consents_bulk_record(
            rows=[
                ConsentRow(
                    customer_id=ids[i],
                    purpose=x.purpose,
                    channel=x.channel,
                    status=x.status,
                    source=x.source,
                    recorded_at=x.at,
                    legal_basis=x.legal_basis,
                    notice_version="2023-04",
                    evidence={"via": x.source},
                )
                for i, c in enumerate(data.customers)
                for x in c.consents
            ],
            progress=step("consents"),
        )
        timed("consents", started)

        started = time.perf_counter()
        orders_bulk_place(
            rows=[
                OrderRow(
                    number=o.number,
                    customer_id=ids[o.customer],
                    placed_at=o.placed_at,
                    lines=[LineRow(sku=sku, quantity=qty) for sku, qty in o.lines],
                    discount_minor=o.discount,
                    channel=o.channel,
                    store=o.store,
                    source=biz.SOURCE,
                )
                for o in data.orders
            ],
            progress=step("orders"),
        )
        timed("orders", started)

        started = time.perf_counter()
        refunds_bulk_create(
            rows=[
                RefundRow(
                    order_number=r.order_number,
                    amount_minor=r.amount,
                    idempotency_key=r.key,
                    created_at=r.at,
                    reason=r.reason,
                )
                for r in data.refunds
            ],
            progress=step("refunds"),
        )
        timed("refunds", started)

        started = time.perf_counter()
        events_bulk_record(
            rows=[
                EventRow(
                    type=e.type,
                    customer_id=ids[e.customer],
                    occurred_at=e.at,
                    properties=e.properties,
                    source="web" if e.type != "App Opened" else "app",
                )
                for e in data.events
            ],
            progress=step("events"),
        )
        timed("events", started)

        started = time.perf_counter()
        demo_loyalty.load()
        timed("loyalty", started)

    # Scores, KPI history and goals once the business is committed (each run is its own
    # transaction, as the nightly one is).
    started = time.perf_counter()
    demo_analytics.load()
    timed("analytics", started)

    # Segments over those scores, materialised (entered events on the timelines).
    started = time.perf_counter()
    demo_segments.load()
    timed("segments", started)

    # Recommendations trained on that history (one run, evaluated on its last weeks).
    started = time.perf_counter()
    demo_recommendations.load()
    timed("recommendations", started)

    # Support: the FAQ knowledge base, canned answers and a few inquiries.
    started = time.perf_counter()
    demo_support.load()
    timed("support", started)

    # Voice of the customer: an NPS survey with a few hundred answers, an event, ideas.
    started = time.perf_counter()
    demo_surveys.load()
    timed("surveys", started)

    # Journeys: three templates live, recent buyers and at-risk customers in them.
    started = time.perf_counter()
    demo_journeys.load()
    timed("journeys", started)

    # B2B accounts, a sales pipeline and subscriptions (service levels use the scores).
    started = time.perf_counter()
    demo_accounts.load()
    timed("accounts", started)
    return timings


# --- demo staff logins --------------------------------------------------------------------


def demo_password(data_dir: Path) -> str:
    """The demo password kept in the data directory (0600), made on first use."""
    path = data_dir / LOGIN_FILE
    if path.exists():
        for line in path.read_text().splitlines():
            if line.startswith("password="):
                return line.removeprefix("password=").strip()
    password = secrets.token_urlsafe(12)
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(f"username={DEMO_USERNAME}\npassword={password}\n")
    path.chmod(0o600)
    return password


@dataclass(frozen=True)
class DemoLogin:
    username: str
    role: str


def staff_ensure(*, password: str) -> list[DemoLogin]:
    """Create the demo staff (an admin and one user per other role) or reset their password,
    active flag and role, so the printed login always works."""
    user_model = get_user_model()
    logins = [DemoLogin(DEMO_USERNAME, "admin")] + [
        DemoLogin(name, role) for role, name in ROLE_USERS.items()
    ]
    with transaction.atomic():
        roles_sync()
        for login in logins:
            user = user_model.objects.filter(username=login.username).first()
            if user is None:
                staff_user_create(
                    username=login.username,
                    password=password,
                    role=login.role,
                    email=f"{login.username}@example.com",
                )
                continue
            assert isinstance(user, User)
            staff_user_reset(user=user, password=password, role=login.role)
    return logins
