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
from kizuna.surveys import links, paging, services
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
    # The token is in the URL: never sent to other sites. Not "no-referrer": browsers then
    # send `Origin: null` with the form POST, which the CSRF check refuses.
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def _hidden_inputs(questions: list[Question], answers: dict[str, Any]) -> list[tuple[str, str]]:
    """The answers of earlier pages, carried as hidden inputs (a list: one per choice)."""
    pairs: list[tuple[str, str]] = []
    for q in questions:
        value = answers.get(q.key)
        if isinstance(value, list):
            pairs.extend((q.key, str(v)) for v in value)
        elif value is not None:
            pairs.append((q.key, str(value)))
    return pairs


def _step(data: Any) -> int | None:
    raw = data.get("step")
    if raw is None:
        return None
    try:
        return max(1, min(int(raw), 100))
    except (TypeError, ValueError):
        return 1


def _submit(
    request: HttpRequest,
    survey: Survey,
    invitation: Invitation | None,
    answers: dict[str, Any],
    language: str,
    base: dict[str, Any],
) -> HttpResponse | dict[str, list[str]]:
    """Record the response: the thank-you page, a refusal page, or the errors to show."""
    try:
        services.response_submit(
            survey=survey,
            answers=answers,
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
        return errors
    return render(request, "portal/surveys/done.html", {**base, "state": "thanks"})


def _render(
    request: HttpRequest,
    survey: Survey,
    invitation: Invitation | None,
    customer: Customer | None,
    language: str,
) -> HttpResponse:
    """One page of the survey at a time (see `kizuna.surveys.paging`): the questions whose
    conditions hold given the answers of the earlier pages, which the form carries along as
    hidden inputs and the server validates again on every step. Answers to questions that
    are not shown are never read. A POST without `step` (every answer at once, as older
    forms and scripts send) is validated as a whole; hidden questions' answers are dropped."""
    base = {"survey_title": survey.title_for(language), "lang": language}
    if invitation is not None and invitation.responded_at is not None:
        return render(request, "portal/surveys/done.html", {**base, "state": "used"}, status=409)
    if survey.status != SurveyStatus.OPEN:
        return render(request, "portal/surveys/done.html", {**base, "state": "closed"}, status=410)
    questions = services.current_questions(survey)
    values: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    answers: dict[str, Any] = {}  # cleaned answers of the pages before the one shown
    target = 1
    status = 200
    if request.method == "POST":
        values = _answers_from(questions, request.POST)
        step = _step(request.POST)
        if step is None:  # everything in one post
            outcome = _submit(request, survey, invitation, values, language, base)
            if isinstance(outcome, HttpResponse):
                return outcome
            errors, status = outcome, 400
            return _form(
                request, survey, language, base, questions, questions, {}, values, errors, status, 0
            )
        going_back = "back" in request.POST
        target = max(1, step - 1) if going_back else step + 1
        pages = paging.paginate(questions, {})
        for done in range(target - 1):
            if done >= len(pages):
                break
            shown = [q for page in pages[: done + 1] for q in page]
            try:
                cleaned = services.clean_answers(
                    shown, {q.key: values[q.key] for q in shown if q.key in values}
                )
            except ValidationError as exc:
                errors = exc.message_dict
                wrong = {k.removeprefix("answers.") for k in errors}
                target = next(
                    (n for n, page in enumerate(pages, 1) if wrong & {q.key for q in page}),
                    done + 1,
                )
                status = 400
                break
            answers = cleaned
            pages = paging.paginate(questions, answers)
        if not errors and target > len(pages):  # nothing more to ask: record it
            outcome = _submit(request, survey, invitation, answers, language, base)
            if isinstance(outcome, HttpResponse):
                return outcome
            errors, status, target = outcome, 400, max(1, len(pages))
        if errors:  # show the page with the first error, after the answers before it
            before = [q for page in pages[: target - 1] for q in page]
            answers = {k: v for k, v in answers.items() if k in {q.key for q in before}}
    pages = paging.paginate(questions, answers)
    target = min(target, max(1, len(pages)))
    page = pages[target - 1] if pages else []
    before = [q for p in pages[: target - 1] for q in p]
    return _form(
        request,
        survey,
        language,
        base,
        questions,
        page,
        answers,
        values,
        errors,
        status,
        target,
        before=before,
    )


def _form(
    request: HttpRequest,
    survey: Survey,
    language: str,
    base: dict[str, Any],
    questions: list[Question],
    page: list[Question],
    answers: dict[str, Any],
    values: dict[str, Any],
    errors: dict[str, list[str]],
    status: int,
    step: int,
    *,
    before: list[Question] | None = None,
) -> HttpResponse:
    """The answer form: `page`'s questions (numbered in the survey), the earlier pages'
    answers as hidden inputs, and Next or Send (step 0: the whole survey at once)."""
    general = [m for k, ms in errors.items() if not k.startswith("answers.") for m in ms]
    numbers = {q.key: n for n, q in enumerate(questions, start=1)}
    items = _items(page, language, values, errors)
    for item in items:
        item["n"] = numbers[item["key"]]
        if step:
            item["condition"] = ""  # shown because its condition holds
    more = bool(step) and paging.may_follow(questions, page, answers)
    return render(
        request,
        "portal/surveys/answer.html",
        {
            **base,
            "description": survey.description_for(language) if step <= 1 else "",
            "items": items,
            "general_errors": general,
            "has_errors": bool(errors),
            "step": step,
            "carried": _hidden_inputs(before or [], answers),
            "more": more,
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
