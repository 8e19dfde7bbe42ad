"""Survey answer pages (アンケート): reached by a signed personal link from a message, or by a
survey's public link when it allows anonymous answers. Mobile-first, accessible (fieldsets,
labels, errors tied to their inputs), ja/en (`?lang=`), CSRF-protected, rate limited per
address; free text is only ever shown escaped."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods
from django_ratelimit.decorators import ratelimit

from kizuna.customers.models import Customer
from kizuna.surveys import links, services
from kizuna.surveys.models import Invitation, Question, QuestionKind, Survey, SurveyStatus

RATE = "60/m"  # page views per address
POST_RATE = "10/m"  # submissions per address: a flood of answers is refused


def _language(request: HttpRequest, customer: Customer | None) -> str:
    language = request.GET.get("lang") or (customer.locale if customer else "") or "ja"
    if language not in ("ja", "en"):
        accepted = request.headers.get("Accept-Language", "")
        language = "en" if accepted.startswith("en") and customer is None else "ja"
    return language


def _answers_from(questions: list[Question], data: Any) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for q in questions:
        if q.kind == QuestionKind.MULTIPLE:
            values = data.getlist(q.key)
            if values:
                answers[q.key] = values
        else:
            value = data.get(q.key)
            if value not in (None, ""):
                answers[q.key] = value
    return answers


def _items(questions: list[Question], language: str, values: dict[str, Any], errors: dict) -> list:
    """What the template shows per question: text, kind, choices in the language, the
    submitted value(s) and its errors."""
    by_key = {q.key: q for q in questions}
    items = []
    for n, q in enumerate(questions, start=1):
        low_high = q.score_range
        value = values.get(q.key)
        selected = value if isinstance(value, list) else ([] if value is None else [str(value)])
        condition = ""
        if q.show_if and q.show_if.get("question") in by_key:
            condition = by_key[q.show_if["question"]].text_for(language)
        items.append(
            {
                "n": n,
                "key": q.key,
                "kind": q.kind,
                "text": q.text_for(language),
                "required": q.required,
                "scale": list(range(low_high[0], low_high[1] + 1)) if low_high else [],
                "choices": [
                    {"value": c["value"], "label": q.choice_label(c["value"], language)}
                    for c in q.choices
                ],
                "selected": [str(s) for s in selected],
                "text_value": value if isinstance(value, str) else "",
                "errors": errors.get(f"answers.{q.key}", []),
                "condition": condition,
            }
        )
    return items


def _page(
    request: HttpRequest,
    survey: Survey,
    *,
    invitation: Invitation | None,
    customer: Customer | None,
) -> HttpResponse:
    language = _language(request, customer)
    with translation.override(language):
        response = _render(request, survey, invitation, customer, language)
        response.headers.setdefault("Content-Language", language)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _render(
    request: HttpRequest,
    survey: Survey,
    invitation: Invitation | None,
    customer: Customer | None,
    language: str,
) -> HttpResponse:
    base = {"survey_title": survey.title_for(language), "lang": language}
    if invitation is not None and invitation.responded_at is not None:
        return render(request, "portal/surveys/done.html", {**base, "state": "used"}, status=409)
    if survey.status != SurveyStatus.OPEN:
        return render(request, "portal/surveys/done.html", {**base, "state": "closed"}, status=410)
    questions = services.current_questions(survey)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = _answers_from(questions, request.POST)
        try:
            services.response_submit(
                survey=survey,
                answers=values,
                invitation=invitation,
                customer=None,
                language=language,
                channel="portal",
            )
        except ValidationError as exc:
            errors = exc.message_dict
            if "invitation" in errors:
                return render(
                    request, "portal/surveys/done.html", {**base, "state": "used"}, status=409
                )
            if "survey" in errors:
                return render(
                    request, "portal/surveys/done.html", {**base, "state": "closed"}, status=410
                )
            status = 400
        else:
            return render(request, "portal/surveys/done.html", {**base, "state": "thanks"})
    general = [m for k, ms in errors.items() if not k.startswith("answers.") for m in ms]
    return render(
        request,
        "portal/surveys/answer.html",
        {
            **base,
            "description": survey.description_for(language),
            "items": _items(questions, language, values, errors),
            "general_errors": general,
            "has_errors": bool(errors),
        },
        status=status,
    )


@ratelimit(key="ip", rate=RATE, block=True)
@ratelimit(key="ip", rate=POST_RATE, method="POST", block=True, group="portal-survey-post")
@never_cache
@require_http_methods(["GET", "POST"])
def survey_answer(request: HttpRequest, token: str) -> HttpResponse:
    invitation = links.invitation_from(token)
    if invitation is None:
        raise Http404
    return _page(request, invitation.survey, invitation=invitation, customer=invitation.customer)


@ratelimit(key="ip", rate=RATE, block=True)
@ratelimit(key="ip", rate=POST_RATE, method="POST", block=True, group="portal-survey-post")
@never_cache
@require_http_methods(["GET", "POST"])
def survey_public(request: HttpRequest, slug: str) -> HttpResponse:
    survey = Survey.objects.filter(slug=slug, allow_anonymous=True).first()
    if survey is None or survey.status == SurveyStatus.DRAFT:
        raise Http404
    return _page(request, survey, invitation=None, customer=None)
