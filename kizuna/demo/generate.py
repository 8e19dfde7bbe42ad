"""Generate the demo business's history as plain data (no database): deterministic by seed.

Repeat purchasing follows the BG/NBD story: every customer has their own purchase rate
(gamma-distributed across customers) and, after each purchase, their own probability of
dropping out for good (beta-distributed). So a few customers are loyal regulars, many
lapse after a handful of visits, and some never come back after the first one. Each
customer also has a spend level (gamma, as in the Gamma-Gamma spend model), a favourite
drink, a home store and a channel mix, which shape their baskets.

Customers also have a latent taste, so what they buy is learnable (recommendations): five
flavour profiles (classic coffee, sweet and milky, Japanese tea, specialty coffee, light
and plant-based) each favour some products. A customer's taste is a mix of the profiles
drawn from a Dirichlet(0.3) (mostly one or two dominant profiles); a product's appeal to
them is the dot product of their taste with the product's profile affinities, and they pick
a product within a category with probability proportional to popularity x appeal^2.
Their favourite drink and favourite food are drawn the same way and bought again and again.
Tastes come from a random stream of their own, so names, visits and timing do not change.
"""

from __future__ import annotations

import hashlib
import random
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

import numpy as np
from faker import Faker

from kizuna.core.timeutil import JST
from kizuna.demo import business as biz

YEARS = 3
SIGNUP_WITHOUT_PURCHASE = 0.08
APP_USER_SHARE = 0.45
REFUND_SHARE = 0.02
COUPON_SHARE = 0.06
# BG/NBD parameters (purchase rate per day ~ Gamma(R, 1/ALPHA); dropout ~ Beta(A, B)).
R, ALPHA = 0.9, 16.5
A, B = 0.7, 5.5
# Opening hours (JST) of a coffee shop with the morning and lunch peaks.
HOURS = list(range(7, 22))
HOUR_WEIGHTS = [6, 10, 8, 6, 7, 9, 8, 6, 7, 6, 5, 4, 3, 2, 1]
REFUND_REASONS = ["商品の不備", "注文間違い", "二重決済", "お客様都合"]
FAVOURITE_TRAIT = {
    "KC-D01": "drip",
    "KC-D02": "latte",
    "KC-D03": "cappuccino",
    "KC-D04": "matcha_latte",
    "KC-D05": "hojicha_latte",
    "KC-D06": "cold_brew",
    "KC-D10": "americano",
}


# Flavour profiles and the products each one favours (affinity 1; others TASTE_FLOOR).
PROFILES: dict[str, tuple[str, ...]] = {
    "classic": (
        "KC-D01", "KC-D07", "KC-D10", "KC-B01", "KC-B03", "KC-B04", "KC-B08",
        "KC-F01", "KC-F05", "KC-F06", "KC-G01", "KC-G03",
    ),
    "sweet": (
        "KC-D02", "KC-D03", "KC-D08", "KC-D09", "KC-D14", "KC-D15",
        "KC-F03", "KC-F04", "KC-F09", "KC-F10", "KC-G05", "KC-G06",
    ),
    "japanese": (
        "KC-D04", "KC-D05", "KC-D15", "KC-D16", "KC-F02", "KC-F07", "KC-F08", "KC-G02",
    ),
    "specialty": (
        "KC-D06", "KC-D11", "KC-B02", "KC-B05", "KC-B06", "KC-G04", "KC-G07", "KC-D01",
    ),
    "light": ("KC-D12", "KC-D13", "KC-B07", "KC-F04", "KC-D16", "KC-G05", "KC-G02"),
}  # fmt: skip
TASTE_CONCENTRATION = 0.3  # Dirichlet parameter of each profile
TASTE_FLOOR = 0.05  # appeal of a product outside the customer's profiles
TASTE_POWER = 2.0
FAVOURITE_FOOD_SHARE = 0.35  # of food picks: the customer's favourite


@dataclass
class DemoConsent:
    purpose: str
    channel: str
    status: str
    at: datetime
    source: str
    legal_basis: str = "consent"


@dataclass
class DemoCustomer:
    data: dict[str, Any]
    created_at: datetime
    line_user_id: str = ""
    line_linked_at: datetime | None = None
    consents: list[DemoConsent] = field(default_factory=list)


@dataclass
class DemoOrder:
    number: str
    customer: int  # index into DemoData.customers
    placed_at: datetime
    lines: list[tuple[str, int]]  # (sku, quantity)
    discount: int
    channel: str
    store: str


@dataclass
class DemoRefund:
    order_number: str
    amount: int
    key: str
    at: datetime
    reason: str


@dataclass
class DemoEvent:
    type: str
    customer: int
    at: datetime
    properties: dict[str, Any]


@dataclass
class DemoData:
    seed: int
    until: datetime
    customers: list[DemoCustomer]
    orders: list[DemoOrder]
    refunds: list[DemoRefund]
    events: list[DemoEvent]

    def digest(self) -> str:
        """A fingerprint of the generated business (for determinism checks)."""
        h = hashlib.sha256()
        for c in self.customers:
            h.update(
                repr(
                    (
                        sorted(c.data.items()),
                        c.created_at,
                        c.line_user_id,
                        [(x.purpose, x.channel, x.status, x.at) for x in c.consents],
                    )
                ).encode()
            )
        for o in self.orders:
            h.update(
                repr(
                    (o.number, o.customer, o.placed_at, o.lines, o.discount, o.channel, o.store)
                ).encode()
            )
        for r in self.refunds:
            h.update(repr((r.order_number, r.amount, r.at)).encode())
        for e in self.events:
            h.update(repr((e.type, e.customer, e.at, sorted(e.properties.items()))).encode())
        return h.hexdigest()


@dataclass
class _Profile:
    """What drives one customer's behaviour (not stored)."""

    index: int
    signup: datetime
    rate: float  # purchases per day
    dropout: float  # probability of never returning after a purchase
    spend: float  # basket size multiplier, mean 1
    favourite: str  # a drink SKU
    favourite_food: str
    taste_cum: dict[str, list[float]]  # per category: cumulative popularity x appeal
    home_store: str
    channels: list[float]  # cumulative weights of store, app, online
    app_user: bool


def _cum(weights: Sequence[float]) -> list[float]:
    return list(accumulate(weights))


def _weights(cum: list[float], at: list[int]) -> list[float]:
    """The weights at positions `at` of cumulative weights `cum`."""
    return [cum[i] - (cum[i - 1] if i else 0.0) for i in at]


def _pick(rng: random.Random, items: Any, cum: list[float]) -> Any:
    """One of `items` by cumulative weights (rng.choices without its per-call overhead)."""
    return items[bisect(cum, rng.random() * cum[-1])]


HOUR_CUM = _cum(HOUR_WEIGHTS)
ONLINE_CATEGORIES = ("beans", "goods", "food", "drinks")
ONLINE_CUM = _cum([60, 25, 10, 5])
CHANNELS = ("store", "app", "online")


class _Menu:
    def __init__(self) -> None:
        self.by_category: dict[str, list[biz.MenuItem]] = {}
        for item in biz.MENU:
            self.by_category.setdefault(item.category, []).append(item)
        self.cum = {c: _cum([i.weight for i in items]) for c, items in self.by_category.items()}
        self.by_sku = {item.sku: item for item in biz.MENU}

        # membership (products x profiles) and popularity, in MENU order
        self.order = [item.sku for item in biz.MENU]
        self.membership = np.array(
            [[item.sku in skus for skus in PROFILES.values()] for item in biz.MENU], float
        )
        self.popularity = np.array([item.weight for item in biz.MENU])
        self.columns = {
            c: [self.order.index(item.sku) for item in items]
            for c, items in self.by_category.items()
        }

    def taste_tables(self, tastes: np.ndarray) -> list[dict[str, list[float]]]:
        """Per customer (rows of `tastes`, each summing to 1) and category: the cumulative
        weights popularity x appeal^power, appeal = taste . affinities (affinity 1 for the
        product's profiles, TASTE_FLOOR for the others)."""
        appeal = TASTE_FLOOR + (1 - TASTE_FLOOR) * (tastes @ self.membership.T)
        weights = self.popularity * appeal**TASTE_POWER
        per_category = {
            c: np.cumsum(weights[:, cols], axis=1).tolist() for c, cols in self.columns.items()
        }
        return [{c: rows[n] for c, rows in per_category.items()} for n in range(len(tastes))]

    def pick(
        self, rng: random.Random, category: str, month: int, cum: list[float] | None = None
    ) -> biz.MenuItem:
        items = self.by_category[category]
        for _attempt in range(5):
            item = _pick(rng, items, cum or self.cum[category])
            if not item.months or month in item.months:
                return item
        return items[0]


def _at_local(day: date, rng: random.Random) -> datetime:
    hour = _pick(rng, HOURS, HOUR_CUM)
    local = datetime(
        day.year, day.month, day.day, hour, rng.randrange(60), rng.randrange(60), tzinfo=JST
    )
    return local.astimezone(UTC)


def generate(
    *,
    customers: int,
    seed: int,
    until: datetime,
    progress: Callable[[str, int], None] | None = None,
) -> DemoData:
    """The whole demo history up to `until`. Same arguments, same data."""
    rng = random.Random(seed)
    fake = Faker(["ja_JP", "en_US"])
    fake.seed_instance(seed)
    ja, en = fake["ja_JP"], fake["en_US"]
    until = until.astimezone(UTC).replace(microsecond=0)
    start = until - timedelta(days=365 * YEARS)
    menu = _Menu()
    # Tastes from a stream of their own, so the rest of the business is as before.
    taste_rng = np.random.default_rng([seed, 0x7A57E])
    tastes = menu.taste_tables(
        taste_rng.dirichlet([TASTE_CONCENTRATION] * len(PROFILES), size=customers)
    )
    favourite_draws = taste_rng.random(customers).tolist()
    store_prefs = {pref for _name, pref in biz.STORES}
    stores_by_pref: dict[str, list[str]] = {}
    for name, pref in biz.STORES:
        stores_by_pref.setdefault(pref, []).append(name)
    stores_by_pref["JP-11"] = stores_by_pref["JP-12"] = stores_by_pref["JP-13"]
    all_prefs = [f"JP-{n:02d}" for n in range(1, 48)]
    others = [p for p in all_prefs if p not in biz.PREFECTURE_WEIGHTS]
    pref_choices = [*biz.PREFECTURE_WEIGHTS, *others]
    pref_weights = [
        *biz.PREFECTURE_WEIGHTS.values(),
        *[biz.OTHER_PREFECTURES_WEIGHT / len(others)] * len(others),
    ]
    drinks = [i for i in menu.by_category["drinks"] if not i.months]
    foods = [i for i in menu.by_category["food"] if not i.months]
    drink_at = [menu.by_category["drinks"].index(i) for i in drinks]
    food_at = [menu.by_category["food"].index(i) for i in foods]

    def tick(step: str, n: int = 1) -> None:
        if progress is not None:
            progress(step, n)

    people: list[DemoCustomer] = []
    profiles: list[_Profile] = []
    emails: set[str] = set()
    phones: set[str] = set()
    span = (until - start).total_seconds()
    for index in range(customers):
        english = rng.random() < 0.15
        roll = rng.random()
        gender = "female" if roll < 0.52 else "male" if roll < 0.95 else "unspecified"
        data: dict[str, Any] = {"gender": gender}
        if english:
            given = en.first_name_female() if gender == "female" else en.first_name_male()
            family = en.last_name()
            data.update(given_name=given, family_name=family, locale="en")
            romaji = (given, family)
            prefecture = rng.choices(
                ["JP-13", "JP-14", "JP-27", "JP-26", "JP-40"], [60, 15, 12, 8, 5]
            )[0]
        else:
            family, family_kana, family_rom = ja.last_name_pair()
            pair = (
                ja.first_name_female_pair() if gender == "female" else (ja.first_name_male_pair())
            )
            given, given_kana, given_rom = pair
            data.update(
                family_name=family,
                given_name=given,
                family_name_kana=family_kana,
                given_name_kana=given_kana,
                locale="ja",
            )
            romaji = (given_rom, family_rom)
            prefecture = rng.choices(pref_choices, pref_weights)[0]
        data["prefecture"] = prefecture
        if prefecture in biz.CITIES:
            data["city"] = rng.choice(biz.CITIES[prefecture])
        if rng.random() < 0.6:
            data["postal_code"] = f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        if not english and rng.random() < 0.5:
            data["address_line"] = f"{ja.town()}{ja.chome()}{ja.ban()}{ja.gou()}"
        if rng.random() < 0.7:
            age = min(80, max(16, int(rng.gauss(36, 11))))
            born = until.date() - timedelta(days=age * 365 + rng.randrange(365))
            data["birthday"] = born.isoformat()
        if english or rng.random() < 0.9:
            base = f"{romaji[0]}.{romaji[1]}".lower().replace(" ", "").replace("'", "")
            email = f"{base}@{rng.choice(biz.EMAIL_DOMAINS)}"
            while email in emails:
                email = f"{base}{rng.randint(1, 9999)}@{rng.choice(biz.EMAIL_DOMAINS)}"
            emails.add(email)
            data["email"] = email
        if rng.random() < (0.3 if english else 0.6):
            phone = f"0{rng.choice('789')}0-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}"
            while phone in phones:
                phone = (
                    f"0{rng.choice('789')}0-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}"
                )
            phones.add(phone)
            data["phone"] = phone

        signup = start + timedelta(seconds=int(span * rng.random() ** 0.8))
        signup = min(signup, until - timedelta(hours=1))
        taste_cum = tastes[index]
        favourite = _pick(rng, drinks, _cum(_weights(taste_cum["drinks"], drink_at))).sku
        food_cum = _cum(_weights(taste_cum["food"], food_at))
        favourite_food = foods[bisect(food_cum, favourite_draws[index] * food_cum[-1])].sku
        app_user = rng.random() < APP_USER_SHARE
        has_store = prefecture in stores_by_pref
        if has_store:
            home = rng.choice(stores_by_pref[prefecture])
            channels = _cum((70.0, 25.0 if app_user else 2.0, 8.0))
        else:
            home = rng.choice(biz.STORES)[0]
            channels = _cum((15.0, 45.0 if app_user else 3.0, 45.0))
        profile = _Profile(
            index=index,
            signup=signup,
            rate=rng.gammavariate(R, 1 / ALPHA),
            dropout=rng.betavariate(A, B),
            spend=rng.gammavariate(4.0, 0.25),
            favourite=favourite,
            favourite_food=favourite_food,
            taste_cum=taste_cum,
            home_store=home,
            channels=channels,
            app_user=app_user,
        )
        traits: dict[str, Any] = {}
        if rng.random() < 0.55 and favourite in FAVOURITE_TRAIT:
            traits["favourite_drink"] = FAVOURITE_TRAIT[favourite]
        if rng.random() < 0.4:
            traits["milk_preference"] = rng.choices(
                ["whole", "low_fat", "soy", "oat", "none"], [40, 10, 15, 20, 15]
            )[0]
        if "email" in data and rng.random() < 0.35:
            traits["newsletter_frequency"] = rng.choices(
                ["weekly", "monthly", "never"], [25, 60, 15]
            )[0]
        if traits:
            data["traits"] = traits
        person = DemoCustomer(data=data, created_at=signup)
        _consents(rng, person, profile, until)
        if not english and rng.random() < (0.55 if app_user else 0.15):
            linked = signup + timedelta(days=rng.expovariate(1 / 60))
            if linked < until:
                person.line_user_id = f"U{rng.getrandbits(128):032x}"
                person.line_linked_at = linked
                if rng.random() < 0.8:
                    person.consents.append(
                        DemoConsent("marketing", "line", "granted", linked, "line_follow")
                    )
        people.append(person)
        profiles.append(profile)
        tick("customers")

    orders, events = _purchases(rng, profiles, menu, store_prefs, until, tick)
    refunds = _refunds(rng, orders, menu, until)
    return DemoData(
        seed=seed, until=until, customers=people, orders=orders, refunds=refunds, events=events
    )


def _consents(rng: random.Random, person: DemoCustomer, profile: _Profile, until: datetime) -> None:
    source = "app" if profile.app_user else "signup_form"
    at = person.created_at
    if "email" in person.data and rng.random() < 0.85:
        person.consents.append(DemoConsent("marketing", "email", "granted", at, source))
        if rng.random() < 0.12:
            later = at + (until - at) * rng.random()
            person.consents.append(
                DemoConsent("marketing", "email", "withdrawn", later, "preference_centre")
            )
    if rng.random() < 0.7:
        person.consents.append(DemoConsent("personalisation", "any", "granted", at, source))


def _purchases(
    rng: random.Random,
    profiles: list[_Profile],
    menu: _Menu,
    store_prefs: set[str],
    until: datetime,
    tick: Callable[[str, int], None],
) -> tuple[list[DemoOrder], list[DemoEvent]]:
    pending: list[tuple[datetime, int, list[tuple[str, int]], int, str, str]] = []
    events: list[DemoEvent] = []
    second = timedelta(seconds=1)
    for p in profiles:
        tick("purchases", 1)
        if rng.random() < SIGNUP_WITHOUT_PURCHASE:
            continue
        times = [p.signup + timedelta(minutes=rng.uniform(2, 40))]
        while rng.random() >= p.dropout:
            gap = max(1, round(rng.expovariate(p.rate)))
            if gap - 1 >= (until - times[-1]).days:
                break
            at = _at_local(times[-1].astimezone(JST).date() + timedelta(days=gap), rng)
            if at >= until:
                break
            times.append(at)
        for at in times:
            if at >= until:
                continue
            channel = _pick(rng, CHANNELS, p.channels)
            store = (
                (p.home_store if rng.random() < 0.8 else rng.choice(biz.STORES)[0])
                if channel == "store"
                else biz.APP_STORE
                if channel == "app"
                else biz.ONLINE_STORE
            )
            lines = _basket(rng, p, menu, channel, at.astimezone(JST).month)
            subtotal = sum(menu.by_sku[sku].price * qty for sku, qty in lines)
            discount = 0
            if rng.random() < COUPON_SHARE:
                discount = min(rng.choice((100, 200, 300)), subtotal // 2)
            pending.append((at, p.index, lines, discount, channel, store))
            # What the web and the app saw around the purchase.
            floor = p.signup + second
            if channel == "app":
                events.append(
                    DemoEvent(
                        "App Opened",
                        p.index,
                        max(floor, at - timedelta(minutes=rng.uniform(2, 15))),
                        {"app_version": rng.choice(["3.2.0", "3.3.1", "3.4.0"])},
                    )
                )
            if channel in ("app", "online"):
                for sku, _qty in lines[: 1 + (channel == "online")]:
                    item = menu.by_sku[sku]
                    events.append(
                        DemoEvent(
                            "Product Viewed",
                            p.index,
                            max(floor, at - timedelta(minutes=rng.uniform(1, 10))),
                            {
                                "sku": sku,
                                "name": item.name,
                                "price": item.price,
                                "category": item.category,
                                "channel": channel,
                            },
                        )
                    )
            elif p.app_user and rng.random() < 0.25:
                events.append(
                    DemoEvent(
                        "Store Visited",
                        p.index,
                        max(floor, at - timedelta(minutes=rng.uniform(1, 5))),
                        {"store": store},
                    )
                )
        # Browsing that did not end in a purchase.
        if p.channels[2] - p.channels[1] > 10 or p.app_user:
            for _visit in range(int(rng.expovariate(1 / (0.6 + len(times) / 10)))):
                at = p.signup + (until - p.signup) * rng.random()
                category = rng.choice(ONLINE_CATEGORIES)
                item = menu.pick(rng, category, at.astimezone(JST).month, p.taste_cum[category])
                events.append(
                    DemoEvent(
                        "Product Viewed",
                        p.index,
                        max(p.signup + second, at),
                        {
                            "sku": item.sku,
                            "name": item.name,
                            "price": item.price,
                            "category": item.category,
                            "channel": "app" if p.app_user else "online",
                        },
                    )
                )
    pending.sort(key=lambda row: (row[0], row[1]))
    width = max(7, len(str(len(pending))))
    orders = []
    for seq, (at, customer, lines, discount, channel, store) in enumerate(pending, start=1):
        orders.append(
            DemoOrder(
                f"{biz.ORDER_PREFIX}{seq:0{width}d}", customer, at, lines, discount, channel, store
            )
        )
    return orders, events


def _basket(
    rng: random.Random, p: _Profile, menu: _Menu, channel: str, month: int
) -> list[tuple[str, int]]:
    size = 1 + min(3, int(rng.expovariate(1 / (1.1 * p.spend + 0.2))))
    chosen: dict[str, int] = {}
    for position in range(size):
        if channel == "online":
            category = _pick(rng, ONLINE_CATEGORIES, ONLINE_CUM)
        elif position == 0:
            category = "drinks" if rng.random() < 0.92 else "food"
        else:
            roll = rng.random() * (77 + 23 * p.spend)
            category = (
                "food"
                if roll < 55
                else "drinks"
                if roll < 77
                else "beans"
                if roll < 77 + 15 * p.spend
                else "goods"
            )
        if category == "drinks" and rng.random() < 0.5:
            sku = p.favourite
        elif category == "food" and rng.random() < FAVOURITE_FOOD_SHARE:
            sku = p.favourite_food
        else:
            sku = menu.pick(rng, category, month, p.taste_cum[category]).sku
        quantity = 2 if rng.random() < (0.1 if category in ("drinks", "beans") else 0.04) else 1
        chosen[sku] = chosen.get(sku, 0) + quantity
    return list(chosen.items())


def _refunds(
    rng: random.Random, orders: list[DemoOrder], menu: _Menu, until: datetime
) -> list[DemoRefund]:
    refunds = []
    for order in orders:
        if rng.random() >= REFUND_SHARE:
            continue
        total = sum(menu.by_sku[sku].price * qty for sku, qty in order.lines) - order.discount
        if rng.random() < 0.7 or len(order.lines) == 1:
            amount = total
        else:
            sku, qty = rng.choice(order.lines)
            amount = min(total, menu.by_sku[sku].price * qty)
        at = order.placed_at + timedelta(hours=rng.uniform(0.2, 72))
        if at >= until:
            at = order.placed_at + (until - order.placed_at) / 2
        refunds.append(
            DemoRefund(
                order.number, amount, f"demo-refund:{order.number}", at, rng.choice(REFUND_REASONS)
            )
        )
    return refunds
