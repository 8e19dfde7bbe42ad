from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.core import events as bus
from kizuna.customers.models import Customer, Event
from kizuna.customers.services import trait_definition_create
from kizuna.surveys import links, services
from kizuna.surveys.models import Answer, Invitation, Question, Response, Survey, SurveyStatus

from .conftest import NPS_QUESTIONS

pytestmark = pytest.mark.django_db


def _capture(event_type: str) -> list[bus.DomainEvent]:
    seen: list[bus.DomainEvent] = []
    bus.subscribe(event_type, seen.append)
    return seen


def test_create_survey_with_versioned_questions(survey: Survey) -> None:
    questions = services.current_questions(survey)
    assert [q.key for q in questions] == ["nps", "why", "fix", "drink"]
    assert survey.version == 1 and survey.status == SurveyStatus.OPEN
    assert questions[2].show_if == {"question": "nps", "op": "lte", "value": 6}


@pytest.mark.parametrize(
    ("questions", "field"),
    [
        ([], "questions"),
        ([{"kind": "bogus", "text": "x"}], "questions.0.kind"),
        ([{"kind": "nps", "text": ""}], "questions.0.text"),
        ([{"kind": "single", "text": "x", "choices": ["only"]}], "questions.0.choices"),
        ([{"kind": "rating", "text": "x", "scale_max": 11}], "questions.0.scale_max"),
        (
            [{"key": "a", "kind": "nps", "text": "x"}, {"key": "a", "kind": "nps", "text": "y"}],
            "questions.1.key",
        ),
        (
            [{"kind": "text", "text": "x", "show_if": {"question": "later", "value": 1}}],
            "questions.0.show_if",
        ),
        ([{"kind": "text", "text": "x", "trait_key": "undeclared"}], "questions.0.trait_key"),
    ],
)
def test_bad_question_definitions_are_refused(questions: list[Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        services.survey_create(data={"slug": "bad", "title": "Bad", "questions": questions})
    assert field in exc.value.message_dict
    assert not Survey.objects.exists()


def test_bad_slug_and_duplicate_slug(survey: Survey) -> None:
    with pytest.raises(ValidationError) as exc:
        services.survey_create(data={"slug": "nps-2026", "title": "x", "questions": NPS_QUESTIONS})
    assert "slug" in exc.value.message_dict
    with pytest.raises(ValidationError) as exc:
        services.survey_create(data={"slug": "Bad Slug!", "title": "x", "questions": NPS_QUESTIONS})
    assert "slug" in exc.value.message_dict


def test_personal_link_answer_records_events_and_marks_invitation(
    survey: Survey, customer: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    answered = _capture("survey.answered")
    detractors = _capture("survey.detractor")
    invitation = links.invitation_for(survey=survey, customer=customer, channel="email")
    with django_capture_on_commit_callbacks(execute=True):
        response = services.response_submit(
            survey=survey,
            invitation=invitation,
            answers={"nps": "10", "why": "スタッフの対応がとても丁寧で満足です", "drink": "coffee"},
        )
    assert response.customer_id == customer.pk and response.nps == 10
    invitation.refresh_from_db()
    assert invitation.responded_at is not None
    texts = Answer.objects.filter(response=response, question__key="why").get()
    assert texts.language == "ja" and texts.sentiment == 1.0
    # "fix" is shown only to detractors: a promoter's answer has none.
    assert not Answer.objects.filter(response=response, question__key="fix").exists()
    assert [e.properties["response_id"] for e in answered] == [response.pk]
    assert answered[0].event_id is not None  # on the customer's stream: loyalty can award
    assert Event.objects.filter(customer=customer, type="survey.answered").count() == 1
    assert detractors == []


def test_replayed_link_is_refused_and_nothing_written(survey: Survey, customer: Customer) -> None:
    invitation = links.invitation_for(survey=survey, customer=customer)
    services.response_submit(survey=survey, invitation=invitation, answers={"nps": 8})
    with pytest.raises(ValidationError) as exc:
        services.response_submit(survey=survey, invitation=invitation, answers={"nps": 2})
    assert "already been used" in exc.value.message_dict["invitation"][0]
    assert Response.objects.count() == 1 and Response.objects.get().nps == 8


def test_closed_survey_refuses_answers(survey: Survey, customer: Customer) -> None:
    invitation = links.invitation_for(survey=survey, customer=customer)
    services.survey_set_status(survey=survey, status=SurveyStatus.CLOSED)
    with pytest.raises(ValidationError) as exc:
        services.response_submit(survey=survey, invitation=invitation, answers={"nps": 9})
    assert "closed" in exc.value.message_dict["survey"][0]
    assert not Response.objects.exists()


@pytest.mark.parametrize("score", [11, -1, "11", "ten", 7.5, True, None])
def test_out_of_range_scores_are_refused(survey: Survey, customer: Customer, score: Any) -> None:
    with pytest.raises(ValidationError) as exc:
        services.response_submit(survey=survey, customer=customer, answers={"nps": score})
    assert "answers.nps" in exc.value.message_dict
    assert not Response.objects.exists()


def test_bad_choices_unknown_questions_and_long_text(survey: Survey, customer: Customer) -> None:
    with pytest.raises(ValidationError) as exc:
        services.response_submit(
            survey=survey,
            customer=customer,
            answers={
                "nps": 3,
                "fix": ["delivery", "nope"],
                "drink": "beer",
                "extra": 1,
                "why": "x" * 5001,
            },
        )
    errors = exc.value.message_dict
    assert {"answers.fix", "answers.drink", "answers", "answers.why"} <= set(errors)
    assert not Response.objects.exists()


def test_detractor_event_carries_the_comment(
    survey: Survey, customer: Customer, django_capture_on_commit_callbacks: Any
) -> None:
    detractors = _capture("survey.detractor")
    with django_capture_on_commit_callbacks(execute=True):
        response = services.response_submit(
            survey=survey,
            customer=customer,
            answers={"nps": 3, "why": "配送が遅くて残念でした", "fix": ["delivery"]},
        )
    assert len(detractors) == 1
    props = detractors[0].properties
    assert props["response_id"] == response.pk and props["score"] == 3
    assert props["comment"] == "配送が遅くて残念でした"
    assert props["survey"] == "顧客満足度調査"
    assert detractors[0].customer_id == customer.pk
    fix = Answer.objects.get(response=response, question__key="fix")
    assert fix.choices == ["delivery"]
    assert Answer.objects.get(response=response, question__key="why").sentiment == -1.0


def test_customer_answers_once(survey: Survey, customer: Customer) -> None:
    services.response_submit(survey=survey, customer=customer, answers={"nps": 9})
    with pytest.raises(ValidationError):
        services.response_submit(survey=survey, customer=customer, answers={"nps": 1})
    assert Response.objects.count() == 1


def test_anonymous_answers_only_when_allowed(
    survey: Survey, django_capture_on_commit_callbacks: Any
) -> None:
    with pytest.raises(ValidationError) as exc:
        services.response_submit(survey=survey, answers={"nps": 9})
    assert "customer" in exc.value.message_dict
    services.survey_update(survey=survey, data={"allow_anonymous": True})
    detractors = _capture("survey.detractor")
    with django_capture_on_commit_callbacks(execute=True):
        response = services.response_submit(survey=survey, answers={"nps": 0})
    assert response.customer_id is None
    assert detractors and detractors[0].customer_id is None
    assert detractors[0].message_id == f"survey.detractor:{response.pk}"


def test_required_question_and_empty_response(survey: Survey, customer: Customer) -> None:
    with pytest.raises(ValidationError) as exc:
        services.response_submit(survey=survey, customer=customer, answers={"why": "hi"})
    assert exc.value.message_dict["answers.nps"] == ["This question needs an answer."]


def test_answers_map_to_customer_traits(customer: Customer) -> None:
    trait_definition_create(
        key="favourite_drink", label="Drink", type="choice", choices=["coffee", "tea"]
    )
    trait_definition_create(key="satisfaction", label="Sat", type="integer")
    survey = services.survey_create(
        data={
            "slug": "prefs",
            "title": "Prefs",
            "questions": [
                {**NPS_QUESTIONS[3], "trait_key": "favourite_drink"},
                {"key": "sat", "kind": "csat", "text": "満足度", "trait_key": "satisfaction"},
            ],
        }
    )
    services.survey_set_status(survey=survey, status=SurveyStatus.OPEN)
    response = services.response_submit(
        survey=survey, customer=customer, answers={"drink": "tea", "sat": 4}
    )
    customer.refresh_from_db()
    assert customer.traits["favourite_drink"] == "tea"
    assert customer.traits["satisfaction"] == 4
    assert response.csat == 4


def test_trait_of_an_incompatible_type_is_refused_at_build_time() -> None:
    trait_definition_create(key="flag", label="Flag", type="boolean")
    with pytest.raises(ValidationError) as exc:
        services.survey_create(
            data={
                "slug": "x",
                "title": "x",
                "questions": [{"kind": "nps", "text": "x", "trait_key": "flag"}],
            }
        )
    assert "questions.0.trait_key" in exc.value.message_dict


def test_changing_answered_questions_starts_a_new_version(
    survey: Survey, customer: Customer
) -> None:
    services.response_submit(survey=survey, customer=customer, answers={"nps": 7})
    services.survey_update(
        survey=survey,
        data={"questions": [{"key": "nps", "kind": "nps", "text": "新しい質問", "required": True}]},
    )
    survey.refresh_from_db()
    assert survey.version == 2
    assert Question.objects.filter(survey=survey, version=1).count() == 4
    assert [q.text for q in services.current_questions(survey)] == ["新しい質問"]
    # Without answers to the new version, editing it again replaces it in place.
    services.survey_update(
        survey=survey,
        data={"questions": [{"key": "nps", "kind": "nps", "text": "もう一度", "required": True}]},
    )
    survey.refresh_from_db()
    assert survey.version == 2
    assert [q.text for q in services.current_questions(survey)] == ["もう一度"]


def test_conditional_question_ne_and_in() -> None:
    assert services.condition_met({"question": "a", "op": "in", "value": [1, 2]}, {"a": 2})
    assert not services.condition_met({"question": "a", "op": "ne", "value": 2}, {"a": 2})
    assert services.condition_met({"question": "a", "op": "eq", "value": "x"}, {"a": ["x", "y"]})
    assert not services.condition_met({"question": "a", "op": "gte", "value": 5}, {})
    assert not services.condition_met({"question": "a", "op": "lte", "value": 5}, {"a": "x"})


def test_signed_links(survey: Survey, customer: Customer) -> None:
    url = links.survey_url(survey, customer)
    token = url.rstrip("/").rsplit("/", 1)[-1]
    invitation = links.invitation_from(token)
    assert invitation is not None and invitation.customer_id == customer.pk
    assert links.invitation_from(token[:-2] + "xx") is None
    assert links.invitation_from("garbage") is None
    assert links.invitation_from(token, max_age=-1) is None
    # The same customer gets the same invitation: one per survey (the response rate's base).
    again = links.survey_url(survey, customer).rstrip("/").rsplit("/", 1)[-1]
    assert links.invitation_from(again) == invitation
    assert Invitation.objects.count() == 1


def test_template_links_resolve_lazily(survey: Survey, customer: Customer) -> None:
    from jinja2.sandbox import SandboxedEnvironment

    context = links.template_links(customer)
    assert Invitation.objects.count() == 0
    assert context["nps_2026"].startswith("http")
    assert "unknown" not in context
    assert context.get("unknown") is None
    assert Invitation.objects.count() == 1
    # As messaging's sandboxed Jinja templates reach it: attribute or item syntax.
    env = SandboxedEnvironment()
    fresh = links.template_links(customer)
    rendered = env.from_string('{{ s.nps_2026 }}|{{ s["nps-2026"] }}').render(s=fresh)
    first, second = rendered.split("|")
    assert "/m/s/" in first and "/m/s/" in second
    assert Invitation.objects.count() == 1


def test_customer_merge_moves_responses(
    survey: Survey, customer: Customer, other_customer: Customer
) -> None:
    response = services.response_submit(survey=survey, customer=other_customer, answers={"nps": 9})
    services.customer_merged(
        bus.DomainEvent(
            type="customer.merged",
            occurred_at=response.submitted_at,
            properties={"survivor_id": customer.pk, "merged_id": other_customer.pk},
        )
    )
    response.refresh_from_db()
    assert response.customer_id == customer.pk


def test_personal_data_export_and_erase(survey: Survey, customer: Customer) -> None:
    from kizuna.surveys import personal_data

    invitation = links.invitation_for(survey=survey, customer=customer)
    services.response_submit(
        survey=survey, invitation=invitation, answers={"nps": 4, "why": "山田です、配送が遅い"}
    )
    exported = list(personal_data._responses_export(customer.pk))
    assert exported[0]["answers"][1]["text"] == "山田です、配送が遅い"
    assert next(iter(personal_data._invitations_export(customer.pk)))["survey_id"] == survey.pk
    assert personal_data._responses_erase(customer.pk, pseudonym="erased-x") == 1
    assert personal_data._invitations_erase(customer.pk, pseudonym="erased-x") == 1
    response = Response.objects.get()
    assert response.customer_id is None and response.nps == 4  # the score stays, anonymous
    assert not Answer.objects.exclude(text="").exists()
    assert not Answer.objects.exclude(terms=[]).exists()
    assert personal_data._responses_erase(customer.pk, pseudonym="erased-x") == 0  # idempotent
    assert list(personal_data._responses_export(customer.pk)) == []
