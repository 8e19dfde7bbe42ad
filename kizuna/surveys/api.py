"""REST API of surveys: build and open surveys, hand out signed links, record answers
collected elsewhere, read results (NPS with its interval, CSAT, trend, keywords)."""
# No `from __future__ import annotations`: ninja reads these annotations at import time.

from datetime import datetime
from typing import Any, ClassVar

from django.http import Http404, HttpRequest
from ninja import Field, Router, Schema, Status
from ninja.pagination import paginate

from kizuna.core.api import InputSchema, PagePagination, responses
from kizuna.customers.selectors import customer_get
from kizuna.iam.authz import request_actor, require_perm
from kizuna.iam.masking import MaskedForRoles
from kizuna.surveys import links, selectors, services
from kizuna.surveys.models import Response, Survey

router = Router(tags=["surveys"])


class QuestionOut(Schema):
    key: str
    kind: str
    text: str
    text_en: str
    required: bool
    choices: list[dict[str, Any]]
    scale_max: int
    show_if: dict[str, Any]
    trait_key: str


class SurveyOut(Schema):
    id: int
    slug: str
    title: str
    title_en: str
    description: str
    description_en: str
    status: str
    allow_anonymous: bool
    version: int
    opened_at: datetime | None
    closed_at: datetime | None
    questions: list[QuestionOut]

    @staticmethod
    def resolve_questions(obj: Survey) -> list[Any]:
        return selectors.questions_of(obj)


class SurveyIn(InputSchema):
    slug: str = Field(..., min_length=1, max_length=60)
    title: str = Field(..., min_length=1, max_length=200)
    title_en: str = Field("", max_length=200)
    description: str = Field("", max_length=5000)
    description_en: str = Field("", max_length=5000)
    allow_anonymous: bool = False
    questions: list[dict[str, Any]] = Field(..., max_length=services.MAX_QUESTIONS)


class SurveyPatch(InputSchema):
    slug: str | None = Field(None, min_length=1, max_length=60)
    title: str | None = Field(None, min_length=1, max_length=200)
    title_en: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=5000)
    description_en: str | None = Field(None, max_length=5000)
    allow_anonymous: bool | None = None
    questions: list[dict[str, Any]] | None = Field(None, max_length=services.MAX_QUESTIONS)


class StatusIn(InputSchema):
    status: str = Field(..., description="draft, open or closed")


class LinkIn(InputSchema):
    customer_id: int
    channel: str = Field("", max_length=20)


class LinkOut(Schema):
    url: str
    invitation_id: int


class ResponseIn(InputSchema):
    customer_id: int | None = None
    answers: dict[str, Any]
    language: str = Field("ja", pattern="^(ja|en)$")
    channel: str = Field("api", max_length=20)


class AnswerOut(Schema, MaskedForRoles):
    # Contact details in free answers masked.
    free_text_fields: ClassVar[frozenset[str]] = frozenset({"text"})

    question: str
    score: int | None
    choices: list[str]
    text: str


class ResponseOut(Schema, MaskedForRoles):
    customer_field: ClassVar[str | None] = "customer_id"  # names in the answers' text

    id: int
    survey_id: int
    version: int
    customer_id: int | None
    language: str
    channel: str
    nps: int | None
    csat: int | None
    submitted_at: datetime
    answers: list[AnswerOut]

    @staticmethod
    def resolve_answers(obj: Response) -> list[dict[str, Any]]:
        return [
            {"question": a.question.key, "score": a.score, "choices": a.choices, "text": a.text}
            for a in obj.answers.all()
        ]


class NpsOut(Schema):
    n: int
    promoters: int
    passives: int
    detractors: int
    score: float | None
    ci_low: float | None
    ci_high: float | None


class CsatOut(Schema):
    n: int
    satisfied: int
    score: float | None
    ci_low: float | None
    ci_high: float | None
    mean: float | None


class TrendOut(Schema):
    month: str
    nps: NpsOut


class TermOut(Schema):
    term: str
    answers: int


class RateOut(Schema):
    invited: int
    responded: int
    anonymous: int
    total: int
    rate: float | None


class ResultsOut(Schema):
    nps: NpsOut
    csat: CsatOut
    response_rate: RateOut
    trend: list[TrendOut]
    keywords: dict[str, list[TermOut]]


def _survey(survey_id: int) -> Survey:
    survey = selectors.survey_get(survey_id=survey_id)
    if survey is None:
        raise Http404
    return survey


def _nps(s: selectors.NpsSummary) -> dict[str, Any]:
    return NpsOut.model_validate(s, from_attributes=True).model_dump()


@router.get(
    "/surveys",
    response=responses({200: list[SurveyOut]}, query=True),
    auth=require_perm("surveys.view_survey"),
)
@paginate(PagePagination)
def survey_list(request: HttpRequest) -> Any:
    return selectors.survey_list()


@router.post(
    "/surveys",
    response=responses({201: SurveyOut}, body=True),
    auth=require_perm("surveys.add_survey"),
)
def survey_create(request: HttpRequest, payload: SurveyIn) -> Any:
    survey = services.survey_create(data=payload.model_dump(), actor=request_actor(request))
    return Status(201, survey)


@router.get(
    "/surveys/{survey_id}",
    response=responses({200: SurveyOut}, lookup=True),
    auth=require_perm("surveys.view_survey"),
)
def survey_detail(request: HttpRequest, survey_id: int) -> Any:
    return _survey(survey_id)


@router.patch(
    "/surveys/{survey_id}",
    response=responses({200: SurveyOut}, lookup=True, body=True),
    auth=require_perm("surveys.change_survey"),
)
def survey_patch(request: HttpRequest, survey_id: int, payload: SurveyPatch) -> Any:
    data = payload.model_dump(exclude_unset=True)
    survey = services.survey_update(
        survey=_survey(survey_id), data=data, actor=request_actor(request)
    )
    return survey


@router.post(
    "/surveys/{survey_id}/status",
    response=responses({200: SurveyOut}, lookup=True, body=True),
    auth=require_perm("surveys.change_survey"),
)
def survey_status(request: HttpRequest, survey_id: int, payload: StatusIn) -> Any:
    survey = services.survey_set_status(
        survey=_survey(survey_id), status=payload.status, actor=request_actor(request)
    )
    return survey


@router.post(
    "/surveys/{survey_id}/links",
    response=responses({200: LinkOut}, lookup=True, body=True),
    auth=require_perm("surveys.change_survey"),
)
def survey_link(request: HttpRequest, survey_id: int, payload: LinkIn) -> Any:
    """The customer's signed personal link (an invitation: counted in the response rate)."""
    survey = _survey(survey_id)
    customer = customer_get(customer_id=payload.customer_id)
    invitation = links.invitation_for(survey=survey, customer=customer, channel=payload.channel)
    return {
        "url": links.survey_url(survey, customer, channel=payload.channel),
        "invitation_id": invitation.pk,
    }


@router.get(
    "/surveys/{survey_id}/responses",
    response=responses({200: list[ResponseOut]}, lookup=True, query=True),
    auth=require_perm("surveys.view_response"),
)
@paginate(PagePagination)
def response_list(request: HttpRequest, survey_id: int) -> Any:
    survey = _survey(survey_id)
    rows = (
        Response.objects.filter(survey=survey)
        .prefetch_related("answers__question")
        .order_by("-submitted_at", "-id")
    )
    return rows


@router.post(
    "/surveys/{survey_id}/responses",
    response=responses({201: ResponseOut}, lookup=True, body=True),
    auth=require_perm("surveys.add_response"),
)
def response_create(request: HttpRequest, survey_id: int, payload: ResponseIn) -> Any:
    """Record answers collected elsewhere (a kiosk, a call), for a customer or anonymous."""
    survey = _survey(survey_id)
    customer = (
        customer_get(customer_id=payload.customer_id) if payload.customer_id is not None else None
    )
    response = services.response_submit(
        survey=survey,
        answers=payload.answers,
        customer=customer,
        language=payload.language,
        channel=payload.channel,
    )
    response = Response.objects.prefetch_related("answers__question").get(pk=response.pk)
    return Status(201, response)


@router.get(
    "/surveys/{survey_id}/results",
    response=responses({200: ResultsOut}, lookup=True),
    auth=require_perm("surveys.view_response"),
)
def survey_results(request: HttpRequest, survey_id: int) -> Any:
    survey = _survey(survey_id)
    rate = selectors.response_rate(survey=survey)
    return {
        "nps": _nps(selectors.nps_summary(survey=survey)),
        "csat": CsatOut.model_validate(
            selectors.csat_summary(survey=survey), from_attributes=True
        ).model_dump(),
        "response_rate": {
            "invited": rate.invited,
            "responded": rate.responded,
            "anonymous": rate.anonymous,
            "total": rate.total,
            "rate": rate.rate,
        },
        "trend": [{"month": m, "nps": _nps(s)} for m, s in selectors.nps_trend(survey=survey)],
        "keywords": {
            category: [{"term": t.term, "answers": t.answers} for t in terms]
            for category, terms in selectors.keywords_by_category(survey=survey, top=20).items()
        },
    }
