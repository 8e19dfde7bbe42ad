"""The first promise to the campaigns app: segments evaluate live, audiences combine."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from kizuna.customers.services import customer_create
from kizuna.segments.models import Segment
from kizuna.segments.selectors import audience_customers, segment_customers
from kizuna.segments.services import segment_save

pytestmark = pytest.mark.django_db


def rules(*conditions: dict, match: str = "all") -> dict:
    return {"version": 1, "match": match, "conditions": list(conditions)}


def ids(qs) -> set[int]:
    return set(qs.values_list("pk", flat=True))


def test_profile_segments_evaluate_live_and_combine_into_audiences() -> None:
    tokyo = customer_create(data={"family_name": "東京", "prefecture": "JP-13", "email": "t@x.jp"})
    osaka = customer_create(data={"family_name": "大阪", "prefecture": "JP-27", "gender": "female"})
    kyoto = customer_create(data={"family_name": "京都", "prefecture": "JP-26", "email": "k@x.jp"})
    kanto = segment_save(
        data={
            "name": "Kanto or Osaka",
            "rules": rules(
                {"field": "profile.prefecture", "op": "in", "value": ["JP-13", "JP-27"]}
            ),
        }
    )
    with_email = segment_save(
        data={"name": "With email", "rules": rules({"field": "profile.email", "op": "is_set"})}
    )
    assert isinstance(kanto, Segment) and kanto.slug == "kanto-or-osaka" and kanto.kind == "dynamic"
    assert ids(segment_customers(segment=kanto)) == {tokyo.pk, osaka.pk}
    assert ids(segment_customers(segment=with_email)) == {tokyo.pk, kyoto.pk}
    assert ids(audience_customers(include=[kanto], exclude=[with_email])) == {osaka.pk}
    assert ids(audience_customers(include=[kanto, with_email], exclude=[])) == {
        tokyo.pk,
        osaka.pk,
        kyoto.pk,
    }
    assert ids(audience_customers(include=[], exclude=[kanto])) == set()
    # a later profile change is seen without any refresh
    customer_create(data={"family_name": "新宿", "prefecture": "JP-13"})
    assert segment_customers(segment=kanto).count() == 3


def test_update_keeps_slug_and_rejects_bad_rules_by_path_writing_nothing() -> None:
    segment = segment_save(
        data={
            "name": "Women",
            "rules": rules({"field": "profile.gender", "op": "eq", "value": "female"}),
        }
    )
    with pytest.raises(ValidationError) as info:
        segment_save(
            segment=segment,
            data={
                "rules": rules(
                    {"field": "profile.gender", "op": "eq", "value": "female"},
                    {"field": "foo", "op": "eq", "value": 1},
                )
            },
        )
    assert info.value.message_dict == {"conditions[1].field": ["unknown field 'foo'"]}
    segment.refresh_from_db()
    assert len(segment.rules["conditions"]) == 1
    updated = segment_save(segment=segment, data={"name": "Female customers"})
    assert updated.slug == "women" and updated.name == "Female customers"
