"""Writes of surveys: building (versioned questions), opening/closing, answering.

Answering (`response_submit`) validates everything first (errors keyed `answers.<key>`, or
`survey` / `invitation` / `customer`; nothing written then), writes the response and its
answers in one transaction with the invitation locked (a replayed or concurrent second
answer is refused, and a unique constraint backs that), maps answers to customer traits
(zero-party data), and publishes `survey.answered` and, for an NPS score of 0-6,
`survey.detractor` after commit.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core.audit import acting_as
from kizuna.core.text import detect_language, tokenize
from kizuna.core.timeutil import now
from kizuna.customers.merge import merge_note_moved
from kizuna.customers.models import Customer, TraitDefinition
from kizuna.customers.services import customer_update, event_record
from kizuna.surveys import sentiment
from kizuna.surveys.models import (
    Answer,
    Invitation,
    Question,
    QuestionKind,
    Response,
    Survey,
    SurveyStatus,
)

logger = logging.getLogger(__name__)

MAX_QUESTIONS = 50
MAX_CHOICES = 30
MAX_TEXT = 5000
DETRACTOR_MAX = 6
PROMOTER_MIN = 9
SHOW_IF_OPS = ("eq", "ne", "lte", "gte", "in")
SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,59}$")
KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SCORED = (QuestionKind.NPS, QuestionKind.CSAT, QuestionKind.RATING)
# Which customer trait types each question kind may fill.
TRAIT_TYPES = {
    QuestionKind.NPS: {"integer", "number"},
    QuestionKind.CSAT: {"integer", "number"},
    QuestionKind.RATING: {"integer", "number"},
    QuestionKind.SINGLE: {"choice", "string"},
    QuestionKind.MULTIPLE: {"string"},
    QuestionKind.TEXT: {"string"},
}


class Errors(dict[str, list[str]]):
    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)

    def raise_if_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


def nps_category(score: int | None) -> str | None:
    if score is None:
        return None
    if score >= PROMOTER_MIN:
        return "promoter"
    if score <= DETRACTOR_MAX:
        return "detractor"
    return "passive"


# --- building -------------------------------------------------------------------------------


def _str(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _clean_choices(raw: Any, prefix: str, errors: Errors) -> list[dict[str, str]]:
    if not isinstance(raw, list) or len(raw) < 2:
        errors.add(f"{prefix}.choices", _("A choice question needs at least two choices."))
        return []
    if len(raw) > MAX_CHOICES:
        errors.add(f"{prefix}.choices", _("At most %(n)d choices.") % {"n": MAX_CHOICES})
        return []
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for n, item in enumerate(raw):
        if isinstance(item, str):
            item = {"value": item, "label": item}
        if not isinstance(item, dict):
            errors.add(f"{prefix}.choices.{n}", _("A choice is a value and a label."))
            continue
        value = _str(item.get("value"), 60)
        label = _str(item.get("label"), 200)
        if not value or not label:
            errors.add(f"{prefix}.choices.{n}", _("A choice needs a value and a label."))
            continue
        if value in seen:
            errors.add(f"{prefix}.choices.{n}", _("Choice values must be unique."))
            continue
        seen.add(value)
        out.append({"value": value, "label": label, "label_en": _str(item.get("label_en"), 200)})
    return out


def clean_questions(raw: Any) -> list[dict[str, Any]]:
    """Validated question definitions, or ValidationError keyed `questions.<n>.<field>`."""
    errors = Errors()
    if not isinstance(raw, list) or not raw:
        errors.add("questions", _("A survey needs at least one question."))
        errors.raise_if_any()
    if len(raw) > MAX_QUESTIONS:
        errors.add("questions", _("At most %(n)d questions.") % {"n": MAX_QUESTIONS})
        errors.raise_if_any()
    traits = {d.key: d for d in TraitDefinition.objects.all()}
    out: list[dict[str, Any]] = []
    kinds: dict[str, str] = {}
    for n, item in enumerate(raw):
        prefix = f"questions.{n}"
        if not isinstance(item, dict):
            errors.add(prefix, _("A question is an object."))
            continue
        key = _str(item.get("key"), 41) or f"q{n + 1}"
        if not KEY_RE.match(key):
            errors.add(f"{prefix}.key", _("Use lower-case letters, digits, - and _ (up to 40)."))
        elif key in kinds:
            errors.add(f"{prefix}.key", _("Question keys must be unique."))
        kind = item.get("kind")
        if kind not in QuestionKind.values:
            errors.add(
                f"{prefix}.kind",
                _("Choose one of: %(c)s.") % {"c": ", ".join(QuestionKind.values)},
            )
            continue
        text = _str(item.get("text"), 501)
        if not text or len(text) > 500:
            errors.add(f"{prefix}.text", _("A question text of 1 to 500 characters is required."))
        clean: dict[str, Any] = {
            "key": key,
            "kind": kind,
            "text": text,
            "text_en": _str(item.get("text_en"), 500),
            "required": bool(item.get("required", False)),
            "choices": [],
            "scale_max": 5,
            "show_if": {},
            "trait_key": _str(item.get("trait_key"), 64),
        }
        if kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            clean["choices"] = _clean_choices(item.get("choices"), prefix, errors)
        if kind == QuestionKind.RATING:
            scale = item.get("scale_max", 5)
            if not isinstance(scale, int) or isinstance(scale, bool) or not 2 <= scale <= 10:
                errors.add(f"{prefix}.scale_max", _("The highest rating is 2 to 10."))
            else:
                clean["scale_max"] = scale
        show_if = item.get("show_if") or {}
        if show_if:
            ref = show_if.get("question") if isinstance(show_if, dict) else None
            op = show_if.get("op", "eq") if isinstance(show_if, dict) else None
            if ref not in kinds:
                errors.add(f"{prefix}.show_if", _("A condition must refer to an earlier question."))
            elif op not in SHOW_IF_OPS:
                errors.add(
                    f"{prefix}.show_if",
                    _("Choose one of: %(c)s.") % {"c": ", ".join(SHOW_IF_OPS)},
                )
            elif "value" not in show_if:
                errors.add(f"{prefix}.show_if", _("A condition needs a value."))
            else:
                clean["show_if"] = {"question": ref, "op": op, "value": show_if["value"]}
        if clean["trait_key"]:
            definition = traits.get(clean["trait_key"])
            if definition is None:
                errors.add(f"{prefix}.trait_key", _("Unknown customer trait; declare it first."))
            elif definition.type not in TRAIT_TYPES[kind]:
                errors.add(
                    f"{prefix}.trait_key",
                    _("This trait's type (%(t)s) cannot hold this question's answers.")
                    % {"t": definition.type},
                )
        kinds[key] = kind
        out.append(clean)
    errors.raise_if_any()
    return out


def _clean_survey_fields(data: dict[str, Any], errors: Errors, survey: Survey | None) -> dict:
    clean: dict[str, Any] = {}
    if survey is None or "slug" in data:
        slug = _str(data.get("slug"), 61)
        if not SLUG_RE.match(slug):
            errors.add("slug", _("Use lower-case letters, digits, - and _ (up to 60)."))
        elif Survey.objects.filter(slug=slug).exclude(pk=survey.pk if survey else 0).exists():
            errors.add("slug", _("A survey with this slug already exists."))
        clean["slug"] = slug
    if survey is None or "title" in data:
        title = _str(data.get("title"), 201)
        if not title or len(title) > 200:
            errors.add("title", _("A title of 1 to 200 characters is required."))
        clean["title"] = title
    for field, limit in (("title_en", 200), ("description", 5000), ("description_en", 5000)):
        if field in data:
            clean[field] = _str(data.get(field), limit)
    if "allow_anonymous" in data:
        clean["allow_anonymous"] = bool(data["allow_anonymous"])
    unknown = set(data) - {
        "slug",
        "title",
        "title_en",
        "description",
        "description_en",
        "allow_anonymous",
        "questions",
    }
    for field in sorted(unknown):
        errors.add(field, _("Unknown field."))
    return clean


def _write_questions(survey: Survey, version: int, questions: list[dict[str, Any]]) -> None:
    Question.objects.bulk_create(
        [
            Question(survey=survey, version=version, position=n, **q)
            for n, q in enumerate(questions, start=1)
        ]
    )


@transaction.atomic
def survey_create(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Survey:
    errors = Errors()
    clean = _clean_survey_fields(data, errors, None)
    questions: list[dict[str, Any]] = []
    try:
        questions = clean_questions(data.get("questions"))
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            for message in messages:
                errors.add(field, message)
    errors.raise_if_any()
    with acting_as(actor):
        survey = Survey.objects.create(
            **clean,
            created_by_id=actor.pk if actor is not None and actor.is_authenticated else None,
        )
        _write_questions(survey, 1, questions)
    return survey


@transaction.atomic
def survey_update(
    *, survey: Survey, data: dict[str, Any], actor: AbstractBaseUser | None = None
) -> Survey:
    """Change a survey. New questions replace the current version's while nobody has
    answered it; once answered, they become a new version (old answers keep their meaning)."""
    survey = Survey.objects.select_for_update().get(pk=survey.pk)
    errors = Errors()
    clean = _clean_survey_fields(data, errors, survey)
    questions: list[dict[str, Any]] | None = None
    if "questions" in data:
        try:
            questions = clean_questions(data["questions"])
        except ValidationError as exc:
            for field, messages in exc.message_dict.items():
                for message in messages:
                    errors.add(field, message)
    errors.raise_if_any()
    with acting_as(actor):
        for field, value in clean.items():
            setattr(survey, field, value)
        if questions is not None:
            if Response.objects.filter(survey=survey, version=survey.version).exists():
                survey.version += 1
            else:
                Question.objects.filter(survey=survey, version=survey.version).delete()
            _write_questions(survey, survey.version, questions)
        survey.save()
    return survey


@transaction.atomic
def survey_set_status(
    *, survey: Survey, status: str, actor: AbstractBaseUser | None = None
) -> Survey:
    if status not in SurveyStatus.values:
        raise ValidationError(
            {"status": [_("Choose one of: %(c)s.") % {"c": ", ".join(SurveyStatus.values)}]}
        )
    survey = Survey.objects.select_for_update().get(pk=survey.pk)
    with acting_as(actor):
        survey.status = status
        if status == SurveyStatus.OPEN:
            survey.opened_at = survey.opened_at or now()
            survey.closed_at = None
        elif status == SurveyStatus.CLOSED:
            survey.closed_at = now()
        survey.save(update_fields=["status", "opened_at", "closed_at", "updated_at"])
    return survey


# --- answering ------------------------------------------------------------------------------


def current_questions(survey: Survey) -> list[Question]:
    return list(Question.objects.filter(survey=survey, version=survey.version).order_by("position"))


def condition_met(show_if: dict[str, Any], answers: dict[str, Any]) -> bool:
    """Whether a conditional question is shown, given the answers cleaned so far."""
    if not show_if:
        return True
    given = answers.get(show_if["question"])
    if given is None:
        return False
    op, value = show_if["op"], show_if["value"]
    if isinstance(given, list):  # a multiple-choice answer: does it include the value(s)?
        wanted = value if isinstance(value, list) else [value]
        hit = any(v in given for v in wanted)
        return not hit if op == "ne" else hit
    try:
        if op == "eq":
            return bool(given == value)
        if op == "ne":
            return bool(given != value)
        if op == "in":
            return given in (value if isinstance(value, list) else [value])
        if op == "lte":
            return bool(given <= value)
        if op == "gte":
            return bool(given >= value)
    except TypeError:
        return False
    return False


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d{1,3}", value.strip()):
        return int(value.strip())
    return None


def clean_answers(questions: list[Question], raw: Any) -> dict[str, Any]:
    """Answers by question key, validated against the questions (conditional ones that are
    not shown are dropped). ValidationError keyed `answers.<key>`."""
    errors = Errors()
    if not isinstance(raw, dict):
        raise ValidationError({"answers": [_("Answers must be an object keyed by question.")]})
    known = {q.key for q in questions}
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        errors.add("answers", _("Unknown questions: %(k)s.") % {"k": ", ".join(unknown)})
    clean: dict[str, Any] = {}
    for q in questions:
        if not condition_met(q.show_if, clean):
            continue
        field = f"answers.{q.key}"
        value = raw.get(q.key)
        empty = value is None or value == "" or value == []
        if empty:
            if q.required:
                errors.add(field, _("This question needs an answer."))
            continue
        if q.kind in SCORED:
            low, high = q.score_range or (0, 0)
            score = _as_int(value)
            if score is None or not low <= score <= high:
                errors.add(
                    field,
                    _("Choose a whole number from %(lo)d to %(hi)d.") % {"lo": low, "hi": high},
                )
                continue
            clean[q.key] = score
        elif q.kind == QuestionKind.SINGLE:
            values = {c["value"] for c in q.choices}
            if not isinstance(value, str) or value not in values:
                errors.add(field, _("Choose one of the offered answers."))
                continue
            clean[q.key] = value
        elif q.kind == QuestionKind.MULTIPLE:
            values = {c["value"] for c in q.choices}
            items = value if isinstance(value, list) else [value]
            if not all(isinstance(v, str) and v in values for v in items):
                errors.add(field, _("Choose only among the offered answers."))
                continue
            clean[q.key] = [c["value"] for c in q.choices if c["value"] in set(items)]
        else:
            if not isinstance(value, str):
                errors.add(field, _("The answer must be text."))
                continue
            text = value.strip()
            if len(text) > MAX_TEXT:
                errors.add(field, _("At most %(n)d characters, please.") % {"n": MAX_TEXT})
                continue
            if text:
                clean[q.key] = text
            elif q.required:
                errors.add(field, _("This question needs an answer."))
    errors.raise_if_any()
    return clean


def _trait_values(questions: list[Question], answers: dict[str, Any]) -> dict[str, Any]:
    traits: dict[str, Any] = {}
    for q in questions:
        if q.trait_key and q.key in answers:
            value = answers[q.key]
            traits[q.trait_key] = ", ".join(value) if isinstance(value, list) else value
    return traits


def _map_traits(customer: Customer, traits: dict[str, Any]) -> None:
    """Zero-party data: the answers of questions mapped to traits become the customer's
    traits. A value the trait refuses (its definition changed since the survey was built)
    is logged and left out; the answer itself is kept."""
    if not traits:
        return
    try:
        with transaction.atomic():
            customer_update(customer=customer, data={"traits": traits}, source="survey")
    except ValidationError as exc:
        logger.warning("survey answers not stored as traits for %s: %s", customer.pk, exc)


def response_submit(
    *,
    survey: Survey,
    answers: Any,
    customer: Customer | None = None,
    invitation: Invitation | None = None,
    language: str = "ja",
    channel: str = "portal",
) -> Response:
    """Record one response. A personal link passes its `invitation` (the customer comes from
    it); a staff/API caller may pass the `customer`; neither is an anonymous answer, allowed
    only when the survey allows it."""
    try:
        return _response_submit(
            survey=survey,
            answers=answers,
            customer=customer,
            invitation=invitation,
            language=language,
            channel=channel,
        )
    except IntegrityError as exc:  # a concurrent answer won the unique constraint
        raise ValidationError(
            {"invitation": [_("This survey has already been answered. Thank you!")]}
        ) from exc


@transaction.atomic
def _response_submit(
    *,
    survey: Survey,
    answers: Any,
    customer: Customer | None,
    invitation: Invitation | None,
    language: str,
    channel: str,
) -> Response:
    survey = Survey.objects.get(pk=survey.pk)
    if survey.status != SurveyStatus.OPEN:
        raise ValidationError(
            {"survey": [_("This survey is closed and no longer accepts answers.")]}
        )
    if invitation is not None:
        invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
        if invitation.survey_id != survey.pk:
            raise ValidationError({"invitation": [_("This link is not for this survey.")]})
        if invitation.responded_at is not None:
            raise ValidationError(
                {"invitation": [_("This link has already been used to answer. Thank you!")]}
            )
        customer = Customer.objects.get(pk=invitation.customer_id)
    if customer is None and not survey.allow_anonymous:
        raise ValidationError(
            {"customer": [_("This survey is answered through a personal link only.")]}
        )
    if customer is not None and Response.objects.filter(survey=survey, customer=customer).exists():
        raise ValidationError(
            {"invitation": [_("This survey has already been answered. Thank you!")]}
        )
    questions = current_questions(survey)
    clean = clean_answers(questions, answers)
    if not clean:
        raise ValidationError({"answers": [_("Please answer at least one question.")]})
    at = now()
    by_key = {q.key: q for q in questions}
    nps = next(
        (clean[q.key] for q in questions if q.kind == QuestionKind.NPS and q.key in clean), None
    )
    csat = next(
        (clean[q.key] for q in questions if q.kind == QuestionKind.CSAT and q.key in clean), None
    )
    response = Response.objects.create(
        survey=survey,
        version=survey.version,
        customer=customer,
        invitation=invitation,
        language=language if language in ("ja", "en") else "ja",
        channel=channel[:20],
        nps=nps,
        csat=csat,
        submitted_at=at,
    )
    rows: list[Answer] = []
    comment = ""
    for key, value in clean.items():
        q = by_key[key]
        row = Answer(response=response, question=q)
        if q.kind in SCORED:
            row.score = value
        elif q.kind == QuestionKind.SINGLE:
            row.choices = [value]
        elif q.kind == QuestionKind.MULTIPLE:
            row.choices = value
        else:
            row.text = value
            row.language = detect_language(value)
            row.sentiment = sentiment.score(value, row.language)
            row.terms = tokenize(value, row.language, stem=False)
            comment = comment or value
        rows.append(row)
    Answer.objects.bulk_create(rows)
    if invitation is not None:
        Invitation.objects.filter(pk=invitation.pk).update(responded_at=at)
    if customer is not None:
        _map_traits(customer, _trait_values(questions, clean))
    _publish(response, comment)
    return response


def _publish(response: Response, comment: str) -> None:
    """`survey.answered` (loyalty may award points for it: its programme's `event_points`
    names event types) and, for an NPS detractor, `survey.detractor` (support opens a
    follow-up inquiry). A customer's go on their event stream (timeline, event ids); an
    anonymous response's are published on the bus only."""
    survey = response.survey
    answered = {
        "survey_id": survey.pk,
        "survey_slug": survey.slug,
        "response_id": response.pk,
        "nps": response.nps,
        "csat": response.csat,
    }
    events: list[tuple[str, dict[str, Any]]] = [("survey.answered", answered)]
    if response.nps is not None and response.nps <= DETRACTOR_MAX:
        events.append(
            (
                "survey.detractor",
                {
                    "survey_id": survey.pk,
                    "survey_slug": survey.slug,
                    "survey_title": survey.title,
                    "survey": survey.title,  # the name support's follow-up inquiry shows
                    "response_id": response.pk,
                    "score": response.nps,
                    "comment": comment[:2000],
                    "language": response.language,
                },
            )
        )
    for event_type, properties in events:
        message_id = f"{event_type}:{response.pk}"
        if response.customer_id is not None:
            event_record(
                type=event_type,
                customer=response.customer,
                occurred_at=response.submitted_at,
                properties=properties,
                source="surveys",
                message_id=message_id,
            )
        else:
            bus.publish(
                bus.DomainEvent(
                    type=event_type,
                    occurred_at=response.submitted_at,
                    properties=properties,
                    source="surveys",
                    message_id=message_id,
                )
            )


# --- customer merges ------------------------------------------------------------------------


# Keys of a merge's snapshot: the ids of the responses and invitations the merge moved.
MERGE_RESPONSES_KEY, MERGE_INVITATIONS_KEY = "survey_responses", "survey_invitations"


def customer_merged(event: bus.DomainEvent) -> None:
    """In the merge's transaction: the merged customer's responses (with their answers) and
    invitations move to the survivor, except for surveys the survivor answered (or was
    invited to) itself; which ones is noted in the merge's snapshot for an unmerge."""
    survivor_id = int(event.properties["survivor_id"])
    merged_id = int(event.properties["merged_id"])
    answered = Response.objects.filter(customer_id=survivor_id).values("survey_id")
    responses = list(
        Response.objects.filter(customer_id=merged_id)
        .exclude(survey_id__in=answered)
        .values_list("pk", flat=True)
    )
    Response.objects.filter(pk__in=responses).update(customer_id=survivor_id)
    invited = Invitation.objects.filter(customer_id=survivor_id).values("survey_id")
    invitations = list(
        Invitation.objects.filter(customer_id=merged_id)
        .exclude(survey_id__in=invited)
        .values_list("pk", flat=True)
    )
    Invitation.objects.filter(pk__in=invitations).update(customer_id=survivor_id)
    merge_id = event.properties.get("merge_id")
    if not merge_id:
        return
    if responses:
        merge_note_moved(merge_id=int(merge_id), key=MERGE_RESPONSES_KEY, row_ids=responses)
    if invitations:
        merge_note_moved(merge_id=int(merge_id), key=MERGE_INVITATIONS_KEY, row_ids=invitations)


def customer_unmerged(event: bus.DomainEvent) -> None:
    """In the unmerge's transaction: the responses and invitations the merge moved go back to
    the restored customer (those still with the survivor; not for a survey the restored
    customer has a response or invitation of its own for since). A merge without these
    notes (older, or nothing moved) moves nothing back."""
    survivor_id = int(event.properties["survivor_id"])
    merged_id = int(event.properties["merged_id"])
    moved = event.properties.get("moved", {})
    answered = Response.objects.filter(customer_id=merged_id).values("survey_id")
    Response.objects.filter(
        pk__in=moved.get(MERGE_RESPONSES_KEY, []), customer_id=survivor_id
    ).exclude(survey_id__in=answered).update(customer_id=merged_id)
    invited = Invitation.objects.filter(customer_id=merged_id).values("survey_id")
    Invitation.objects.filter(
        pk__in=moved.get(MERGE_INVITATIONS_KEY, []), customer_id=survivor_id
    ).exclude(survey_id__in=invited).update(customer_id=merged_id)
