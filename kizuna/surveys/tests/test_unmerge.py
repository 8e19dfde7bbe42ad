"""Undoing a customer merge gives the restored customer back the survey responses (with
their answers) and invitations the merge moved."""

from __future__ import annotations

from kizuna.customers.merge import customer_merge, customer_unmerge
from kizuna.customers.models import Customer, CustomerMerge
from kizuna.surveys import links, services
from kizuna.surveys.models import Answer, Invitation, Response, Survey


def second_survey() -> Survey:
    from .conftest import NPS_QUESTIONS

    survey = services.survey_create(
        data={"slug": "nps-q2", "title": "第二", "title_en": "Second", "questions": NPS_QUESTIONS}
    )
    return services.survey_set_status(survey=survey, status="open")


def test_unmerge_moves_responses_and_invitations_back(
    survey: Survey, customer: Customer, other_customer: Customer
) -> None:
    invitation = links.invitation_for(survey=survey, customer=other_customer)
    response = services.response_submit(
        survey=survey, invitation=invitation, answers={"nps": 9, "why": "早い"}
    )
    answers = set(Answer.objects.filter(response=response).values_list("pk", flat=True))
    record = customer_merge(survivor=customer, merged=other_customer)
    response.refresh_from_db()
    assert response.customer_id == customer.pk
    moved = CustomerMerge.objects.get(pk=record.pk).snapshot["moved"]
    assert moved[services.MERGE_RESPONSES_KEY] == [response.pk]
    assert moved[services.MERGE_INVITATIONS_KEY] == [invitation.pk]

    customer_unmerge(merge=record)

    response.refresh_from_db()
    assert response.customer_id == other_customer.pk
    assert Invitation.objects.get(pk=invitation.pk).customer_id == other_customer.pk
    assert set(Answer.objects.filter(response=response).values_list("pk", flat=True)) == answers
    assert not Response.objects.filter(customer=customer).exists()


def test_the_survivors_own_responses_stay_and_a_shared_survey_is_untouched(
    survey: Survey, customer: Customer, other_customer: Customer
) -> None:
    mine = services.response_submit(survey=survey, customer=customer, answers={"nps": 3})
    theirs = services.response_submit(survey=survey, customer=other_customer, answers={"nps": 8})
    later = second_survey()
    moved_one = services.response_submit(survey=later, customer=other_customer, answers={"nps": 5})
    record = customer_merge(survivor=customer, merged=other_customer)
    # The survey both answered keeps each response with its customer; the other one moves.
    assert Response.objects.get(pk=theirs.pk).customer_id == other_customer.pk
    assert Response.objects.get(pk=moved_one.pk).customer_id == customer.pk
    customer_unmerge(merge=record)
    assert Response.objects.get(pk=mine.pk).customer_id == customer.pk
    assert Response.objects.get(pk=theirs.pk).customer_id == other_customer.pk
    assert Response.objects.get(pk=moved_one.pk).customer_id == other_customer.pk


def test_a_response_given_after_the_merge_stays_with_the_survivor(
    survey: Survey, customer: Customer, other_customer: Customer
) -> None:
    record = customer_merge(survivor=customer, merged=other_customer)
    after = services.response_submit(survey=survey, customer=customer, answers={"nps": 10})
    customer_unmerge(merge=record)
    assert Response.objects.get(pk=after.pk).customer_id == customer.pk


def test_an_old_merge_without_survey_notes_still_unmerges(
    survey: Survey, customer: Customer, other_customer: Customer
) -> None:
    response = services.response_submit(survey=survey, customer=other_customer, answers={"nps": 9})
    record = customer_merge(survivor=customer, merged=other_customer)
    snapshot = CustomerMerge.objects.get(pk=record.pk).snapshot
    snapshot["moved"].pop(services.MERGE_RESPONSES_KEY)
    CustomerMerge.objects.filter(pk=record.pk).update(snapshot=snapshot)
    record.refresh_from_db()
    customer_unmerge(merge=record)
    other_customer.refresh_from_db()
    assert other_customer.merged_into_id is None
    # Nothing noted, nothing moved back.
    assert Response.objects.get(pk=response.pk).customer_id == customer.pk
