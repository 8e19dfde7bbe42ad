"""Reads of audiences: who is in a segment now, audiences of several segments, sizes."""

from __future__ import annotations

from typing import Any

from django.db.models import Exists, OuterRef, Q, QuerySet

from kizuna.core.errors import NotFound
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer, TraitDefinition
from kizuna.loyalty.models import Tier
from kizuna.segments import rules as rule_language
from kizuna.segments.models import Segment, SegmentKind, SegmentMembership, SegmentSnapshot


def rule_context(*, self_id: int | None = None, rules: Any = None) -> rule_language.Context:
    """The compilation context as stored now: trait schema, segments, tier codes.

    Reads only what `rules` (when given) needs: traits if it names one, the other segments
    if it refers to any, tier codes if it names `loyalty.tier`."""
    text = repr(rules) if rules is not None else None
    if text is not None and "'segment'" in text:
        text = None  # the referred segments' rules may need anything
    traits: dict[str, dict[str, Any]] = {}
    if text is None or "trait." in text:
        traits = {
            d["key"]: dict(d) for d in TraitDefinition.objects.values("key", "type", "choices")
        }
    segments: dict[int, rule_language.SegmentRef] = {}
    if text is None or "'segment'" in text:
        segments = {
            s["id"]: rule_language.SegmentRef(
                id=s["id"], name=s["name"], kind=s["kind"], rules=s["rules"]
            )
            for s in Segment.objects.values("id", "name", "kind", "rules")
        }
    tiers: list[str] = []
    if text is None or "loyalty.tier" in text:
        tiers = sorted(set(Tier.objects.values_list("code", flat=True)))
    return rule_language.Context(
        now=now(), traits=traits, segments=segments, tiers=tiers, self_id=self_id
    )


def segment_get(*, segment_id: int) -> Segment:
    segment = Segment.objects.filter(pk=segment_id).first()
    if segment is None:
        raise NotFound("segment", segment_id)
    return segment


def segment_list() -> QuerySet[Segment]:
    return Segment.objects.select_related("created_by").order_by("name", "id")


def segment_condition(*, segment: Segment, ctx: rule_language.Context | None = None) -> Q:
    """The condition on Customer selecting the segment's current members."""
    if segment.kind == SegmentKind.STATIC:
        rows = SegmentMembership.objects.filter(segment_id=segment.pk, customer_id=OuterRef("pk"))
        return Q(merged_into__isnull=True) & Q(Exists(rows))
    ctx = ctx or rule_context(self_id=segment.pk, rules=segment.rules)
    return rule_language.compile_rules(segment.rules, ctx)


def segment_customers(*, segment: Segment) -> QuerySet[Customer]:
    """The segment's members now: the live evaluation of its rules (dynamic) or its list
    (static). Evaluating the returned queryset is one SQL statement."""
    return Customer.objects.filter(segment_condition(segment=segment))


def audience_customers(*, include: list[Segment], exclude: list[Segment]) -> QuerySet[Customer]:
    """Customers in any of `include` and in none of `exclude` (one SQL statement)."""
    ctx = rule_context()
    wanted = Q(pk__in=[])
    for segment in include:
        wanted |= segment_condition(segment=segment, ctx=ctx)
    for segment in exclude:
        wanted &= ~segment_condition(segment=segment, ctx=ctx)
    return Customer.objects.filter(wanted)


def rules_preview(*, rules: Any, self_id: int | None = None) -> QuerySet[Customer]:
    """The customers unsaved `rules` would select (the builder's live count).
    Raises ValidationError keyed by path for bad rules."""
    ctx = rule_context(self_id=self_id, rules=rules)
    return rule_language.customers_matching(rules, ctx)


def segment_members(*, segment: Segment) -> QuerySet[SegmentMembership]:
    """The materialised membership (as of the last refresh), newest first."""
    return (
        SegmentMembership.objects.filter(segment=segment)
        .select_related("customer")
        .order_by("-entered_at", "-id")
    )


def segment_snapshots(*, segment: Segment, limit: int = 365) -> list[SegmentSnapshot]:
    rows = list(
        SegmentSnapshot.objects.filter(segment=segment).order_by("-taken_at", "-id")[:limit]
    )
    rows.reverse()
    return rows


def customer_segments(*, customer: Customer) -> QuerySet[SegmentMembership]:
    """The segments a customer was in at their last refresh (or is listed in), by name."""
    return (
        SegmentMembership.objects.filter(customer=customer)
        .select_related("segment")
        .order_by("segment__name", "segment_id")
    )
