"""The segment rule language: validation and compilation to one ORM condition.

A rule document (version 1, see docs/segments.md) is a tree of groups and conditions::

    {"version": 1, "match": "all", "conditions": [
        {"field": "profile.prefecture", "op": "in", "value": ["JP-13", "JP-14"]},
        {"match": "any", "conditions": [
            {"field": "event.count", "event_type": "Product Viewed", "within_days": 30,
             "op": "gte", "value": 3},
            {"field": "score.rfm_segment", "op": "eq", "value": "at_risk"}]}]}

Compilation is pure: it reads only the rule document and a `Context` (the trait schema, the
other segments, the loyalty tier codes and "now"), never the database, and returns one
`Q` over `Customer` built from column lookups, `Exists` and `IN (SELECT ...)` subqueries,
so a segment is evaluated by one SQL statement on SQLite and PostgreSQL alike.

Semantics shared by every field:

- the negative operators (`neq`, `not_in`, `not_contains`, `is_not_set`, `excludes`, and
  `is false` of a boolean) are the exact complement of their positive operator: a customer
  without a value (no score row, no loyalty account, trait not set) matches `neq`;
- comparisons (`gt`, `before`, ...) match only customers that have a value;
- counts and sums are 0 for customers without rows, so `order.count eq 0` matches them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, Exists, F, Max, Min, OuterRef, Q, QuerySet, Sum, Value
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from kizuna.analytics.models import CustomerScore
from kizuna.analytics.models import Segment as RfmSegment
from kizuna.commerce.models import Order, OrderLine, OrderStatus
from kizuna.core.timeutil import JST, local_date
from kizuna.customers.choices import (
    PREFECTURE_CHOICES,
    ConsentChannel,
    ConsentPurpose,
    ConsentStatus,
    Gender,
    IdentityKind,
    Locale,
)
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity
from kizuna.loyalty.models import Account

VERSION = 1
MAX_DEPTH = 6
MAX_CONDITIONS = 200
MAX_LIST = 1000
MAX_STRING = 255
PROPERTY_KEY = re.compile(r"^(?!.*__)[A-Za-z0-9$][A-Za-z0-9_$ .:-]{0,63}$")

# --- types and operators ------------------------------------------------------------------

STRING_OPS = (
    "eq",
    "neq",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "is_set",
    "is_not_set",
)
NUMBER_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between", "is_set", "is_not_set")
COUNT_OPS = ("eq", "neq", "gt", "gte", "lt", "lte", "between")
CHOICE_OPS = ("eq", "neq", "in", "not_in", "is_set", "is_not_set")
DATE_OPS = (
    "before",
    "after",
    "between",
    "within_last_days",
    "more_than_days_ago",
    "is_set",
    "is_not_set",
)
BOOLEAN_OPS = ("is",)
SET_OPS = ("includes", "excludes")

TYPE_OPS: dict[str, tuple[str, ...]] = {
    "string": STRING_OPS,
    "number": NUMBER_OPS,
    "count": COUNT_OPS,
    "choice": CHOICE_OPS,
    "date": DATE_OPS,
    "datetime": DATE_OPS,
    "boolean": BOOLEAN_OPS,
    "set": SET_OPS,
}
NEGATIVE = {
    "neq": "eq",
    "not_in": "in",
    "not_contains": "contains",
    "is_not_set": "is_set",
    "excludes": "includes",
}
NO_VALUE = {"is_set", "is_not_set"}


@dataclass(frozen=True)
class SegmentRef:
    """What compilation needs to know of another segment."""

    id: int
    name: str
    kind: str
    rules: Mapping[str, Any]


@dataclass(frozen=True)
class Context:
    """Everything compilation reads besides the rule document."""

    now: datetime
    traits: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # key -> type, choices
    segments: Mapping[int, SegmentRef] = field(default_factory=dict)
    tiers: Sequence[str] = ()
    self_id: int | None = None  # the segment whose rules these are (cycle detection)

    @property
    def today(self) -> date:
        return local_date(self.now)


@dataclass(frozen=True)
class Param:
    """An extra key of a condition (the event type, a window in days, property filters)."""

    kind: str  # "string", "days", "choice", "where"
    required: bool = False
    choices: tuple[Any, ...] = ()


Compiler = Callable[[dict[str, Any], "Compilation"], Q]


@dataclass(frozen=True)
class FieldSpec:
    name: str
    label: Any  # lazy translation
    group: Any
    type: str
    compile: Compiler
    params: Mapping[str, Param] = field(default_factory=dict)
    choices: tuple[tuple[Any, Any], ...] = ()  # (value, label); dynamic ones come from Context
    nullable: bool = True

    @property
    def ops(self) -> tuple[str, ...]:
        return TYPE_OPS[self.type]


class RuleErrors(dict[str, list[str]]):
    def add(self, path: str, message: str) -> None:
        self.setdefault(path, []).append(message)


# --- value validation ---------------------------------------------------------------------


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _parse_date(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _check_scalar(
    kind: str, value: Any, choices: Sequence[Any], strict: bool = False
) -> str | None:
    if kind == "string":
        if not isinstance(value, str) or len(value) > MAX_STRING:
            return _("Expected text of at most %(n)d characters.") % {"n": MAX_STRING}
    elif kind in ("number", "count"):
        if not _is_number(value):
            return _("Expected a number.")
        if kind == "count" and value < 0:
            return _("Expected a number of zero or more.")
    elif kind in ("choice", "set"):
        if (choices or strict) and value not in choices:
            return _("%(value)s is not one of the allowed values.") % {"value": repr(value)}
        if not choices and not isinstance(value, str | int):
            return _("Expected a value.")
    elif kind in ("date", "datetime") and _parse_date(value) is None:
        return _("Expected a date as YYYY-MM-DD.")
    return None


def check_value(
    spec_type: str, op: str, value: Any, choices: Sequence[Any], strict: bool = False
) -> str | None:
    """The error for `value` under `op` of a field of `spec_type`, or None (`strict`: the
    value must be one of `choices` even when there are none)."""
    if op in NO_VALUE:
        return None
    if op == "is":
        return None if isinstance(value, bool) else _("Expected true or false.")
    if op in ("within_last_days", "more_than_days_ago"):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 36500:
            return _("Expected a whole number of days (0 to 36500).")
        return None
    if op in ("in", "not_in") or (op in SET_OPS and isinstance(value, list)):
        if not isinstance(value, list) or not value or len(value) > MAX_LIST:
            return _("Expected a list of 1 to %(n)d values.") % {"n": MAX_LIST}
        for item in value:
            error = _check_scalar(spec_type, item, choices, strict)
            if error:
                return error
        return None
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            return _("Expected a list of two values [from, to].")
        for item in value:
            error = _check_scalar(spec_type, item, choices)
            if error:
                return error
        low, high = value
        if spec_type in ("date", "datetime"):
            low, high = _parse_date(low), _parse_date(high)
        if low > high:
            return _("The first value must not be greater than the second.")
        return None
    return _check_scalar(spec_type, value, choices, strict)


# --- compilation helpers ------------------------------------------------------------------


def _start_of(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=JST)


def _date_bounds(op: str, value: Any, ctx: Context) -> tuple[datetime | None, datetime | None]:
    """[low, high) of a date operator on a timestamp, in the business's time zone."""
    if op == "before":
        return None, _start_of(date.fromisoformat(value))
    if op == "after":
        return _start_of(date.fromisoformat(value) + timedelta(days=1)), None
    if op == "between":
        low, high = (date.fromisoformat(v) for v in value)
        return _start_of(low), _start_of(high + timedelta(days=1))
    if op == "within_last_days":
        return ctx.now - timedelta(days=value), None
    if op == "more_than_days_ago":
        return None, ctx.now - timedelta(days=value)
    raise AssertionError(op)


def _compare(path: str, op: str, value: Any, spec_type: str, ctx: Context) -> Q:
    """A positive comparison of the lookup `path` (no negation, no set tests)."""
    if spec_type == "datetime":
        low, high = _date_bounds(op, value, ctx)
        q = Q()
        if low is not None:
            q &= Q(**{f"{path}__gte": low})
        if high is not None:
            q &= Q(**{f"{path}__lt": high})
        return q
    if spec_type == "date":
        today = ctx.today
        if op == "before":
            return Q(**{f"{path}__lt": date.fromisoformat(value)})
        if op == "after":
            return Q(**{f"{path}__gt": date.fromisoformat(value)})
        if op == "between":
            return Q(**{f"{path}__gte": date.fromisoformat(value[0])}) & Q(
                **{f"{path}__lte": date.fromisoformat(value[1])}
            )
        if op == "within_last_days":
            return Q(**{f"{path}__gte": today - timedelta(days=value)})
        if op == "more_than_days_ago":
            return Q(**{f"{path}__lt": today - timedelta(days=value)})
    lookups = {
        "eq": "exact",
        "gt": "gt",
        "gte": "gte",
        "lt": "lt",
        "lte": "lte",
        "in": "in",
        "contains": "icontains",
        "starts_with": "istartswith",
    }
    if op == "between":
        return Q(**{f"{path}__gte": value[0]}) & Q(**{f"{path}__lte": value[1]})
    return Q(**{f"{path}__{lookups[op]}": value})


def _utc_day_range(day: str, low: datetime | None, high: datetime | None) -> Q:
    """The UTC days of a [low, high) time range, on a column holding a time's UTC day (implied
    by the time range itself: added so that the database can start from the day's index)."""
    q = Q()
    if low is not None:
        q &= Q(**{f"{day}__gte": low.astimezone(UTC).date()})
    if high is not None:
        q &= Q(**{f"{day}__lte": high.astimezone(UTC).date()})
    return q


def column_condition(
    path: str, *, nullable: bool, blank: bool = False, utc_day: str = ""
) -> Compiler:
    """A field read from a column of Customer (or a transform of one). `utc_day`: a column
    holding the UTC day of this (datetime) one, indexed where the time itself is not."""
    null_path = path.split("__")[0]

    def compile(cond: dict[str, Any], comp: Compilation) -> Q:
        op, value, spec = cond["op"], cond.get("value"), comp.spec(cond)
        positive = NEGATIVE.get(op, op)
        if positive == "is_set":
            q = Q(**{f"{null_path}__isnull": False}) if nullable else Q()
            if blank:
                q &= ~Q(**{null_path: ""})
        else:
            q = _compare(path, positive, value, spec.type, comp.ctx)
            if utc_day and spec.type == "datetime":
                q &= _utc_day_range(utc_day, *_date_bounds(positive, value, comp.ctx))
        if op in NEGATIVE:
            if positive == "is_set":
                return ~q
            missing = Q(**{f"{null_path}__isnull": True}) if nullable else None
            return ~q | missing if missing is not None else ~q
        return q

    return compile


def _json_q(column: str, key: str, lookup: str, value: Any, *, text: bool) -> Q:
    """`column -> key <lookup> value` through Django's JSON key lookups (keys are checked
    to be plain names, never containing "__", so a key cannot be read as a lookup)."""
    assert "__" not in key and key, key
    del text  # Django's key lookups pick text or JSON comparison by lookup
    return Q(**{f"{column}__{key}__{lookup}": value})


def _json_compare(column: str, key: str, op: str, value: Any, json_type: str, ctx: Context) -> Q:
    """A positive comparison of `column ->> key` for one of the trait types."""
    text = json_type in ("string", "choice", "date")
    if json_type == "date":
        today = ctx.today
        if op == "before":
            bounds = [("lt", value)]
        elif op == "after":
            bounds = [("gt", value)]
        elif op == "between":
            bounds = [("gte", value[0]), ("lte", value[1])]
        elif op == "within_last_days":
            bounds = [("gte", (today - timedelta(days=value)).isoformat())]
        else:  # more_than_days_ago
            bounds = [("lt", (today - timedelta(days=value)).isoformat())]
        q = Q()
        for lookup, bound in bounds:
            q &= _json_q(column, key, lookup, bound, text=True)
        return q
    if op == "between":
        return _json_q(column, key, "gte", value[0], text=text) & _json_q(
            column, key, "lte", value[1], text=text
        )
    lookup = {
        "eq": "exact",
        "is": "exact",
        "gt": "gt",
        "gte": "gte",
        "lt": "lt",
        "lte": "lte",
        "in": "in",
        "contains": "icontains",
        "starts_with": "istartswith",
    }[op]
    return _json_q(column, key, lookup, value, text=text)


# --- compilers of each field kind ---------------------------------------------------------


def _trait_compile(cond: dict[str, Any], comp: Compilation) -> Q:
    key = cond["field"].split(".", 1)[1]
    spec = comp.spec(cond)
    op, value = cond["op"], cond.get("value")
    positive = NEGATIVE.get(op, op)
    has = Q(traits__has_key=key)
    if spec.type == "boolean":
        q = has & _json_q("traits", key, "exact", True, text=False)
        return q if value else ~q
    if positive == "is_set":
        q = has
    else:
        json_type = {"string": "string", "number": "number", "choice": "choice"}.get(
            spec.type, spec.type
        )
        q = has & _json_compare("traits", key, positive, value, json_type, comp.ctx)
    return ~q if op in NEGATIVE else q


def _exists(model_qs: QuerySet[Any], op: str | None = None, value: Any = True) -> Q:
    q = Q(Exists(model_qs))
    negate = (op in NEGATIVE) or (op == "is" and value is False)
    return ~q if negate else q


def _identity_compile(cond: dict[str, Any], comp: Compilation) -> Q:
    value = cond["value"]
    kinds = value if isinstance(value, list) else [value]
    rows = Identity.objects.filter(customer_id=OuterRef("pk"), kind__in=kinds)
    return _exists(rows, cond["op"])


def _consent_compile(cond: dict[str, Any], comp: Compilation) -> Q:
    """Granted now: the newest ledger entry for (purpose, channel or "any") is a grant
    (the rule of `kizuna.customers.selectors.has_consent`)."""
    purpose, channel = cond["purpose"], cond["channel"]
    channels = [channel] if channel == ConsentChannel.ANY else [channel, ConsentChannel.ANY]
    newer = ConsentEntry.objects.filter(
        customer_id=OuterRef("customer_id"), purpose=purpose, channel__in=channels
    ).filter(
        Q(recorded_at__gt=OuterRef("recorded_at"))
        | Q(recorded_at=OuterRef("recorded_at"), id__gt=OuterRef("id"))
    )
    granted = ConsentEntry.objects.filter(
        customer_id=OuterRef("pk"),
        purpose=purpose,
        channel__in=channels,
        status=ConsentStatus.GRANTED,
    ).filter(~Exists(newer))
    return _exists(granted, "is", cond["value"])


def _window(rows: QuerySet[Any], time_field: str, cond: dict[str, Any], ctx: Context) -> Any:
    days = cond.get("within_days")
    if days is not None:
        rows = rows.filter(**{f"{time_field}__gte": ctx.now - timedelta(days=days)})
    return rows


def _having(alias: str, op: str, value: Any) -> tuple[Q, Callable[[Any], bool]]:
    """The HAVING condition of a count/sum comparison and the same test in Python (for the
    customers that have no rows, whose aggregate is 0)."""
    tests: dict[str, tuple[Q, Callable[[Any], bool]]] = {
        "eq": (Q(**{alias: value}), lambda v: v == value),
        "neq": (~Q(**{alias: value}), lambda v: v != value),
        "gt": (Q(**{f"{alias}__gt": value}), lambda v: v > value),
        "gte": (Q(**{f"{alias}__gte": value}), lambda v: v >= value),
        "lt": (Q(**{f"{alias}__lt": value}), lambda v: v < value),
        "lte": (Q(**{f"{alias}__lte": value}), lambda v: v <= value),
    }
    if op == "between":
        low, high = value
        return (
            Q(**{f"{alias}__gte": low}) & Q(**{f"{alias}__lte": high}),
            lambda v: low <= v <= high,
        )
    return tests[op]


def _aggregate_q(rows: QuerySet[Any], aggregate: Any, op: str, value: Any) -> Q:
    """Customers whose aggregate over `rows` (grouped by customer) satisfies `op value`;
    customers without rows count as 0. One `IN (SELECT customer_id ... GROUP BY ...
    HAVING ...)` subquery, negated when 0 itself satisfies the comparison."""
    having, test = _having("agg", op, value)
    grouped = rows.order_by().values("customer_id").annotate(agg=aggregate)
    if test(0):
        return ~Q(pk__in=grouped.filter(~having).values("customer_id"))
    return Q(pk__in=grouped.filter(having).values("customer_id"))


def _latest_q(
    rows: QuerySet[Any], time_field: str, which: Any, cond: dict[str, Any], ctx: Context
) -> Q:
    """A date operator on the first/last time of `rows` per customer (NULL without rows)."""
    op, value = cond["op"], cond.get("value")
    ids = rows.order_by().values("customer_id")
    if op == "is_set":
        return Q(pk__in=ids)
    if op == "is_not_set":
        return ~Q(pk__in=ids)
    low, high = _date_bounds(op, value, ctx)
    having = Q()
    if low is not None:
        having &= Q(agg__gte=low)
    if high is not None:
        having &= Q(agg__lt=high)
    grouped = ids.annotate(agg=which(time_field)).filter(having).values("customer_id")
    return Q(pk__in=grouped)


def _event_rows(cond: dict[str, Any], ctx: Context) -> QuerySet[Event]:
    rows = Event.objects.filter(customer_id__isnull=False, type=cond["event_type"])
    rows = _window(rows, "occurred_at", cond, ctx)
    for item in cond.get("where") or []:
        key, op, value = item["property"], item["op"], item.get("value")
        positive = NEGATIVE.get(op, op)
        json_type = "number" if op in ("gt", "gte", "lt", "lte") else "string"
        if positive == "is_set":
            q = Q(properties__has_key=key)
        elif positive in ("eq", "in"):
            q = _json_q("properties", key, "exact" if positive == "eq" else "in", value, text=False)
        else:
            q = _json_compare("properties", key, positive, value, json_type, ctx)
        rows = rows.filter(~q if op in NEGATIVE else q)
    return rows


def _event_count(cond: dict[str, Any], comp: Compilation) -> Q:
    return _aggregate_q(_event_rows(cond, comp.ctx), Count("id"), cond["op"], cond["value"])


def _event_performed(cond: dict[str, Any], comp: Compilation) -> Q:
    rows = _event_rows(cond, comp.ctx).values("customer_id")
    q = Q(pk__in=rows)
    return q if cond["value"] else ~q


def _event_last(cond: dict[str, Any], comp: Compilation) -> Q:
    return _latest_q(_event_rows(cond, comp.ctx), "occurred_at", Max, cond, comp.ctx)


COUNTED_ORDERS = ~Q(status=OrderStatus.CANCELLED)


def _order_rows(cond: dict[str, Any], ctx: Context) -> QuerySet[Order]:
    return _window(Order.objects.filter(COUNTED_ORDERS), "placed_at", cond, ctx)


def _order_count(cond: dict[str, Any], comp: Compilation) -> Q:
    return _aggregate_q(_order_rows(cond, comp.ctx), Count("id"), cond["op"], cond["value"])


def _order_spend(cond: dict[str, Any], comp: Compilation) -> Q:
    net = Sum(F("total_minor") - F("refunded_minor"))
    return _aggregate_q(_order_rows(cond, comp.ctx), net, cond["op"], cond["value"])


def _order_last(cond: dict[str, Any], comp: Compilation) -> Q:
    return _latest_q(_order_rows(cond, comp.ctx), "placed_at", Max, cond, comp.ctx)


def _order_first(cond: dict[str, Any], comp: Compilation) -> Q:
    return _latest_q(_order_rows(cond, comp.ctx), "placed_at", Min, cond, comp.ctx)


def _bought(line_filter: Callable[[list[Any]], Q]) -> Compiler:
    def compile(cond: dict[str, Any], comp: Compilation) -> Q:
        value = cond["value"]
        values = value if isinstance(value, list) else [value]
        lines = OrderLine.objects.filter(line_filter(values), order__in=_order_rows(cond, comp.ctx))
        q = Q(pk__in=lines.values("order__customer_id"))
        return ~q if cond["op"] in NEGATIVE else q

    return compile


def _category_filter(slugs: list[Any]) -> Q:
    """A product of the category or of one of its sub-categories (two levels down)."""
    return (
        Q(product__category__slug__in=slugs)
        | Q(product__category__parent__slug__in=slugs)
        | Q(product__category__parent__parent__slug__in=slugs)
    )


def score_condition(column: str, *, expression: Any = None) -> Compiler:
    """A field of the customer's current score row (absent for customers never scored)."""

    def compile(cond: dict[str, Any], comp: Compilation) -> Q:
        op, value, spec = cond["op"], cond.get("value"), comp.spec(cond)
        rows = CustomerScore.objects.filter(customer_id=OuterRef("pk"))
        if expression is not None:
            rows = rows.alias(**{column: expression})
        if spec.type == "boolean":
            return _exists(rows.filter(**{column: True}), "is", value)
        positive = NEGATIVE.get(op, op)
        if positive != "is_set":
            rows = rows.filter(_compare(column, positive, value, spec.type, comp.ctx))
        return _exists(rows, op)

    return compile


def loyalty_condition(column: str | None) -> Compiler:
    def compile(cond: dict[str, Any], comp: Compilation) -> Q:
        op, value, spec = cond["op"], cond.get("value"), comp.spec(cond)
        rows = Account.objects.filter(customer_id=OuterRef("pk"))
        if column is None:  # loyalty.member
            return _exists(rows, "is", value)
        positive = NEGATIVE.get(op, op)
        if positive == "is_set":
            rows = rows.filter(**{f"{column}__isnull": False})
        else:
            rows = rows.filter(_compare(column, positive, value, spec.type, comp.ctx))
        return _exists(rows, op)

    return compile


def _segment_compile(cond: dict[str, Any], comp: Compilation) -> Q:
    value = cond["value"]
    ids = value if isinstance(value, list) else [value]
    q = Q(pk__in=[])
    for segment_id in ids:
        q |= comp.segment_q(int(segment_id))
    return ~q if cond["op"] in NEGATIVE else q


# --- the field registry -------------------------------------------------------------------

PROFILE = gettext_lazy("Profile")
TRAITS = gettext_lazy("Traits")
IDENTITIES = gettext_lazy("Identities and consent")
EVENTS = gettext_lazy("Events")
ORDERS = gettext_lazy("Orders")
SCORES = gettext_lazy("Scores")
LOYALTY = gettext_lazy("Loyalty")
SEGMENTS = gettext_lazy("Segments")

EVENT_PARAMS = {
    "event_type": Param("string", required=True),
    "within_days": Param("days"),
    "where": Param("where"),
}
WINDOW = {"within_days": Param("days")}
MONTHS = tuple((m, str(m)) for m in range(1, 13))

FIELDS: dict[str, FieldSpec] = {}


def register_field(spec: FieldSpec) -> None:
    """Add a field to the registry (the extension point for new kinds of data)."""
    if spec.type not in TYPE_OPS:
        raise ValueError(f"unknown field type {spec.type!r}")
    FIELDS[spec.name] = spec


for _spec in (
    FieldSpec(
        "profile.email",
        gettext_lazy("Email"),
        PROFILE,
        "string",
        column_condition("email", nullable=False, blank=True),
        nullable=False,
    ),
    FieldSpec(
        "profile.phone",
        gettext_lazy("Phone"),
        PROFILE,
        "string",
        column_condition("phone", nullable=False, blank=True),
        nullable=False,
    ),
    FieldSpec(
        "profile.city",
        gettext_lazy("City"),
        PROFILE,
        "string",
        column_condition("city", nullable=False, blank=True),
        nullable=False,
    ),
    FieldSpec(
        "profile.postal_code",
        gettext_lazy("Postal code"),
        PROFILE,
        "string",
        column_condition("postal_code", nullable=False, blank=True),
        nullable=False,
    ),
    FieldSpec(
        "profile.gender",
        gettext_lazy("Gender"),
        PROFILE,
        "choice",
        column_condition("gender", nullable=False),
        choices=tuple(Gender.choices),
        nullable=False,
    ),
    FieldSpec(
        "profile.prefecture",
        gettext_lazy("Prefecture"),
        PROFILE,
        "choice",
        column_condition("prefecture", nullable=False, blank=True),
        choices=tuple(PREFECTURE_CHOICES),
        nullable=False,
    ),
    FieldSpec(
        "profile.locale",
        gettext_lazy("Language"),
        PROFILE,
        "choice",
        column_condition("locale", nullable=False),
        choices=tuple(Locale.choices),
        nullable=False,
    ),
    FieldSpec(
        "profile.birthday_month",
        gettext_lazy("Birthday month"),
        PROFILE,
        "choice",
        column_condition("birthday__month", nullable=True),
        choices=MONTHS,
    ),
    FieldSpec(
        "profile.birthday",
        gettext_lazy("Birthday"),
        PROFILE,
        "date",
        column_condition("birthday", nullable=True),
    ),
    FieldSpec(
        "profile.created_at",
        gettext_lazy("Created"),
        PROFILE,
        "datetime",
        column_condition("created_at", nullable=False),
        nullable=False,
    ),
    FieldSpec(
        "profile.first_seen_at",
        gettext_lazy("First seen"),
        PROFILE,
        "datetime",
        column_condition("first_seen_at", nullable=True),
    ),
    FieldSpec(
        "profile.last_seen_at",
        gettext_lazy("Last seen"),
        PROFILE,
        "datetime",
        column_condition("last_seen_at", nullable=True, utc_day="last_seen_on"),
    ),
    FieldSpec(
        "identity",
        gettext_lazy("Has identity"),
        IDENTITIES,
        "set",
        _identity_compile,
        choices=tuple(IdentityKind.choices),
    ),
    FieldSpec(
        "consent",
        gettext_lazy("Consent granted"),
        IDENTITIES,
        "boolean",
        _consent_compile,
        params={
            "purpose": Param("choice", required=True, choices=tuple(ConsentPurpose.values)),
            "channel": Param("choice", required=True, choices=tuple(ConsentChannel.values)),
        },
    ),
    FieldSpec(
        "event.count", gettext_lazy("Times done"), EVENTS, "count", _event_count, EVENT_PARAMS
    ),
    FieldSpec(
        "event.performed", gettext_lazy("Did it"), EVENTS, "boolean", _event_performed, EVENT_PARAMS
    ),
    FieldSpec(
        "event.last_at",
        gettext_lazy("Last time done"),
        EVENTS,
        "datetime",
        _event_last,
        EVENT_PARAMS,
    ),
    FieldSpec("order.count", gettext_lazy("Orders"), ORDERS, "count", _order_count, WINDOW),
    FieldSpec(
        "order.total_spend", gettext_lazy("Net spend (yen)"), ORDERS, "count", _order_spend, WINDOW
    ),
    FieldSpec("order.last_at", gettext_lazy("Last order"), ORDERS, "datetime", _order_last, WINDOW),
    FieldSpec("order.first_at", gettext_lazy("First order"), ORDERS, "datetime", _order_first),
    FieldSpec(
        "order.bought_sku",
        gettext_lazy("Bought product (SKU)"),
        ORDERS,
        "set",
        _bought(lambda skus: Q(sku__in=skus)),
        WINDOW,
    ),
    FieldSpec(
        "order.bought_category",
        gettext_lazy("Bought from category"),
        ORDERS,
        "set",
        _bought(_category_filter),
        WINDOW,
    ),
    FieldSpec(
        "score.rfm_segment",
        gettext_lazy("RFM segment"),
        SCORES,
        "choice",
        score_condition("segment"),
        choices=tuple(RfmSegment.choices),
    ),
    FieldSpec(
        "score.clv", gettext_lazy("CLV (yen)"), SCORES, "number", score_condition("clv_minor")
    ),
    FieldSpec(
        "score.p_alive",
        gettext_lazy("Probability alive"),
        SCORES,
        "number",
        score_condition("p_alive"),
    ),
    FieldSpec(
        "score.churn_risk",
        gettext_lazy("Churn risk"),
        SCORES,
        "number",
        score_condition("churn_risk", expression=Value(1.0) - F("p_alive")),
    ),
    FieldSpec(
        "score.at_risk", gettext_lazy("At risk"), SCORES, "boolean", score_condition("at_risk")
    ),
    FieldSpec("score.r", gettext_lazy("R score"), SCORES, "number", score_condition("r_score")),
    FieldSpec("score.f", gettext_lazy("F score"), SCORES, "number", score_condition("f_score")),
    FieldSpec("score.m", gettext_lazy("M score"), SCORES, "number", score_condition("m_score")),
    FieldSpec(
        "score.days_overdue",
        gettext_lazy("Days past expected purchase"),
        SCORES,
        "number",
        score_condition("days_overdue"),
    ),
    FieldSpec(
        "loyalty.member",
        gettext_lazy("Loyalty member"),
        LOYALTY,
        "boolean",
        loyalty_condition(None),
    ),
    FieldSpec(
        "loyalty.tier", gettext_lazy("Tier"), LOYALTY, "choice", loyalty_condition("tier__code")
    ),
    FieldSpec(
        "loyalty.balance",
        gettext_lazy("Points balance"),
        LOYALTY,
        "number",
        loyalty_condition("balance"),
    ),
    FieldSpec(
        "segment",
        gettext_lazy("Member of segment"),
        SEGMENTS,
        "set",
        _segment_compile,
        nullable=False,
    ),
):
    register_field(_spec)

# --- survey answers and NPS: extension point ----------------------------------------------
# There is no `kizuna.surveys` app yet. When it lands (activity layer, so segments may import
# it), its fields are registered here with `register_field`, for example
#   FieldSpec("survey.nps_category", ..., "choice", <Exists over the latest NPS answer>,
#             choices=(("promoter", ...), ("passive", ...), ("detractor", ...)))
#   FieldSpec("survey.answer", ..., "string", <Exists over answers>,
#             params={"survey": Param("string", required=True),
#                     "question": Param("string", required=True)})
# Nothing is registered until that data exists: a rule naming `survey.*` is refused as an
# unknown field.

TRAIT_TYPES = {
    "string": "string",
    "number": "number",
    "integer": "number",
    "boolean": "boolean",
    "date": "date",
    "choice": "choice",
}


def trait_spec(key: str, definition: Mapping[str, Any]) -> FieldSpec:
    choices = tuple((c, c) for c in definition.get("choices") or [])
    return FieldSpec(
        f"trait.{key}",
        key,
        TRAITS,
        TRAIT_TYPES[definition["type"]],
        _trait_compile,
        choices=choices,
    )


# --- validation and compilation -----------------------------------------------------------


class Compilation:
    """One validation + compilation of a rule document against a context."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.errors = RuleErrors()
        self.count = 0
        self._stack: list[int] = [ctx.self_id] if ctx.self_id is not None else []

    def field_spec(self, name: Any) -> FieldSpec | None:
        if not isinstance(name, str):
            return None
        if name.startswith("trait."):
            key = name[len("trait.") :]
            definition = self.ctx.traits.get(key)
            return trait_spec(key, definition) if definition and "__" not in key else None
        return FIELDS.get(name)

    def spec(self, cond: dict[str, Any]) -> FieldSpec:
        spec = self.field_spec(cond["field"])
        assert spec is not None
        return spec

    def choices(self, spec: FieldSpec) -> list[Any]:
        if spec.name == "loyalty.tier":
            return list(self.ctx.tiers)
        if spec.name == "segment":
            return list(self.ctx.segments)
        return [value for value, _label in spec.choices]

    # validation ---------------------------------------------------------------------------

    def check_group(self, node: Any, path: str, depth: int) -> None:
        prefix = f"{path}." if path else ""
        if not isinstance(node, dict):
            self.errors.add(path or "rules", _("Expected an object."))
            return
        if node.get("match", "all") not in ("all", "any"):
            self.errors.add(f"{prefix}match", _('Expected "all" or "any".'))
        conditions = node.get("conditions", [])
        if not isinstance(conditions, list):
            self.errors.add(f"{prefix}conditions", _("Expected a list of conditions."))
            return
        if depth > MAX_DEPTH:
            self.errors.add(
                f"{prefix}conditions", _("Groups nest at most %(n)d deep.") % {"n": MAX_DEPTH}
            )
            return
        unknown = set(node) - {"match", "conditions", "version", "negate"}
        for key in sorted(unknown):
            self.errors.add(f"{prefix}{key}", _("Unknown key."))
        if "negate" in node and not isinstance(node["negate"], bool):
            self.errors.add(f"{prefix}negate", _("Expected true or false."))
        for i, child in enumerate(conditions):
            child_path = f"{prefix}conditions[{i}]"
            self.count += 1
            if self.count > MAX_CONDITIONS:
                self.errors.add(
                    child_path, _("A segment has at most %(n)d conditions.") % {"n": MAX_CONDITIONS}
                )
                return
            if isinstance(child, dict) and "conditions" in child:
                self.check_group(child, child_path, depth + 1)
            else:
                self.check_condition(child, child_path)

    def check_condition(self, cond: Any, path: str) -> None:
        if not isinstance(cond, dict):
            self.errors.add(path, _("Expected a condition object."))
            return
        name = cond.get("field")
        spec = self.field_spec(name)
        if spec is None:
            self.errors.add(f"{path}.field", _("unknown field %(name)s") % {"name": repr(name)})
            return
        op = cond.get("op")
        if op not in spec.ops:
            self.errors.add(
                f"{path}.op",
                _("operator %(op)s is not allowed for %(field)s (a %(type)s); use one of: %(ops)s")
                % {
                    "op": repr(op),
                    "field": spec.name,
                    "type": spec.type,
                    "ops": ", ".join(spec.ops),
                },
            )
            return
        allowed = {"field", "op", "value", *spec.params}
        for key in sorted(set(cond) - allowed):
            self.errors.add(f"{path}.{key}", _("Unknown key for %(field)s.") % {"field": spec.name})
        if op not in NO_VALUE:
            if "value" not in cond:
                self.errors.add(f"{path}.value", _("A value is required."))
            else:
                strict = spec.name in ("segment", "loyalty.tier")
                error = check_value(spec.type, op, cond["value"], self.choices(spec), strict)
                if error:
                    self.errors.add(f"{path}.value", error)
        for key, param in spec.params.items():
            self.check_param(cond, key, param, f"{path}.{key}")
        if spec.name == "segment" and f"{path}.value" not in self.errors:
            value = cond["value"]
            for segment_id in value if isinstance(value, list) else [value]:
                cycle = self.cycle_from(int(segment_id))
                if cycle:
                    names = " → ".join(self.segment_name(s) for s in cycle)
                    self.errors.add(
                        f"{path}.value",
                        _("segments refer to each other in a cycle: %(cycle)s") % {"cycle": names},
                    )

    def check_param(self, cond: dict[str, Any], key: str, param: Param, path: str) -> None:
        if key not in cond or cond[key] is None:
            if param.required:
                self.errors.add(path, _("This is required."))
            return
        value = cond[key]
        if param.kind == "string":
            if not isinstance(value, str) or not 0 < len(value) <= 100:
                self.errors.add(path, _("Expected text of 1 to 100 characters."))
        elif param.kind == "days":
            if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 36500:
                self.errors.add(path, _("Expected a whole number of days (1 to 36500)."))
        elif param.kind == "choice":
            if value not in param.choices:
                self.errors.add(
                    path, _("%(value)s is not one of the allowed values.") % {"value": repr(value)}
                )
        elif param.kind == "where":
            self.check_where(value, path)

    def check_where(self, filters: Any, path: str) -> None:
        if not isinstance(filters, list) or len(filters) > 20:
            self.errors.add(path, _("Expected a list of at most 20 property filters."))
            return
        ops = ("eq", "neq", "in", "not_in", "gt", "gte", "lt", "lte", "contains", "is_set")
        for i, item in enumerate(filters):
            item_path = f"{path}[{i}]"
            if not isinstance(item, dict):
                self.errors.add(item_path, _("Expected a property filter object."))
                continue
            key = item.get("property")
            if not isinstance(key, str) or not PROPERTY_KEY.match(key):
                self.errors.add(f"{item_path}.property", _("Expected a property name."))
            op = item.get("op")
            if op not in (*ops, "is_not_set"):
                self.errors.add(
                    f"{item_path}.op",
                    _("operator %(op)s is not allowed for an event property; use one of: %(ops)s")
                    % {"op": repr(op), "ops": ", ".join((*ops, "is_not_set"))},
                )
                continue
            if op in NO_VALUE:
                continue
            value = item.get("value")
            if op in ("gt", "gte", "lt", "lte"):
                error = None if _is_number(value) else _("Expected a number.")
            elif op in ("in", "not_in"):
                ok = (
                    isinstance(value, list)
                    and 0 < len(value) <= MAX_LIST
                    and all(isinstance(v, str | int | float | bool) for v in value)
                )
                error = None if ok else _("Expected a list of values.")
            elif op == "contains":
                error = None if isinstance(value, str) else _("Expected text.")
            else:
                ok = isinstance(value, str | int | float | bool)
                error = None if ok else _("Expected a text, number or true/false value.")
            if error:
                self.errors.add(f"{item_path}.value", error)

    def segment_name(self, segment_id: int) -> str:
        ref = self.ctx.segments.get(segment_id)
        return repr(ref.name) if ref else f"#{segment_id}"

    def cycle_from(self, segment_id: int, trail: list[int] | None = None) -> list[int] | None:
        """The cycle reached by following references from `segment_id`, if any."""
        trail = [*(trail or self._stack), segment_id]
        if segment_id in trail[:-1]:
            return trail[trail.index(segment_id) :]
        ref = self.ctx.segments.get(segment_id)
        if ref is None or ref.kind != "dynamic":
            return None
        for child in _segment_refs(ref.rules):
            cycle = self.cycle_from(child, trail)
            if cycle:
                return cycle
        return None

    # compilation ----------------------------------------------------------------------------

    def group_q(self, node: dict[str, Any]) -> Q:
        parts = [
            self.group_q(child) if "conditions" in child else self.spec(child).compile(child, self)
            for child in node.get("conditions", [])
        ]
        if node.get("match", "all") == "any":
            q = Q(pk__in=[])
            for part in parts:
                q |= part
        else:
            q = Q()
            for part in parts:
                q &= part
        return ~q if node.get("negate") else q

    def segment_q(self, segment_id: int) -> Q:
        ref = self.ctx.segments.get(segment_id)
        if ref is None:
            raise ValidationError(
                {"segment": [_("Segment #%(id)s no longer exists.") % {"id": segment_id}]}
            )
        if ref.kind == "dynamic":
            # Its rules were valid when saved; the trait schema or tiers may have changed.
            inner = Compilation(self.ctx)
            inner._stack = [*self._stack, segment_id]
            _check_document(ref.rules, inner)
            if inner.errors:
                raise ValidationError(
                    {
                        f"segment[{segment_id}].{path}": messages
                        for path, messages in inner.errors.items()
                    }
                )
        if ref.kind != "dynamic":
            from kizuna.segments.models import SegmentMembership

            rows = SegmentMembership.objects.filter(
                segment_id=segment_id, customer_id=OuterRef("pk")
            )
            return Q(Exists(rows))
        self._stack.append(segment_id)
        try:
            return self.group_q(dict(ref.rules))
        finally:
            self._stack.pop()


def _segment_refs(node: Any) -> list[int]:
    """The segment ids a rule document refers to (anywhere in its tree)."""
    found: list[int] = []
    if not isinstance(node, dict):
        return found
    for child in node.get("conditions", []) or []:
        if isinstance(child, dict) and "conditions" in child:
            found.extend(_segment_refs(child))
        elif isinstance(child, dict) and child.get("field") == "segment":
            value = child.get("value")
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, int) and not isinstance(item, bool):
                    found.append(item)
    return found


def segment_refs(rules: Any) -> list[int]:
    return _segment_refs(rules)


def validate(rules: Any, ctx: Context) -> None:
    """Raise ValidationError keyed by the path of each bad part of `rules`."""
    comp = Compilation(ctx)
    _check_document(rules, comp)
    if comp.errors:
        raise ValidationError(dict(comp.errors))


def _check_document(rules: Any, comp: Compilation) -> None:
    if not isinstance(rules, dict):
        comp.errors.add("rules", _("Expected an object."))
        return
    if rules.get("version") != VERSION:
        comp.errors.add("version", _("Expected version %(v)d.") % {"v": VERSION})
    comp.check_group(rules, "", 0)


def compile_rules(rules: Any, ctx: Context) -> Q:
    """Validate `rules` and return the condition on Customer that selects its members
    (merged-away profiles are never members)."""
    comp = Compilation(ctx)
    _check_document(rules, comp)
    if comp.errors:
        raise ValidationError(dict(comp.errors))
    return Q(merged_into__isnull=True) & comp.group_q(rules)


def customers_matching(rules: Any, ctx: Context) -> QuerySet[Customer]:
    return Customer.objects.filter(compile_rules(rules, ctx))


def field_menu(ctx: Context) -> list[FieldSpec]:
    """Every field a rule may name today, the traits of the schema included (for menus)."""
    specs = list(FIELDS.values())
    specs += [trait_spec(key, definition) for key, definition in sorted(ctx.traits.items())]
    return specs
