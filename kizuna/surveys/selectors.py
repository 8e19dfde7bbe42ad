"""Reads of surveys: lists, NPS / CSAT analytics, keyword frequencies, exports.

NPS and its confidence interval
-------------------------------
Each NPS answer is scored +1 (promoter, 9-10), 0 (passive, 7-8) or -1 (detractor, 0-6);
NPS = 100 × the mean of those scores = 100 × (share of promoters − share of detractors).
The interval is the normal approximation for that mean: with p and d the promoter and
detractor shares of n answers, the variance of one score is p + d − (p − d)², the standard
error of NPS is 100 × sqrt(variance / n), and the 95 % interval is NPS ± 1.96 standard errors,
clipped to [−100, 100]. It is reported only for n ≥ 2 (reliable from about 30 answers;
`small_sample` says when fewer).

CSAT is the share of answers 4-5 on the 1-5 scale (in %), with a 95 % Wilson score
interval, plus the mean score.

Breakdowns by segment, tier, RFM segment or product live in higher apps; this app must not
import them, so `nps_by_group` takes the groupings (label → customer ids) as an argument and
the console computes them (`kizuna.console.views_surveys`).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncMonth

from kizuna.core.text import ngrams, stem_en
from kizuna.core.timeutil import JST
from kizuna.surveys.models import Answer, Invitation, Question, QuestionKind, Response, Survey
from kizuna.surveys.services import DETRACTOR_MAX, PROMOTER_MIN, nps_category

Z95 = 1.959964
SMALL_SAMPLE = 30
CATEGORIES = ("promoter", "passive", "detractor")


def survey_list() -> QuerySet[Survey]:
    return Survey.objects.annotate(
        response_count=Count("responses", distinct=True),
        invitation_count=Count("invitations", distinct=True),
    ).order_by("-id")


def survey_get(*, survey_id: int) -> Survey | None:
    return Survey.objects.filter(pk=survey_id).first()


def questions_of(survey: Survey, version: int | None = None) -> list[Question]:
    return list(
        Question.objects.filter(survey=survey, version=version or survey.version).order_by(
            "position"
        )
    )


# --- NPS / CSAT ---------------------------------------------------------------------------


@dataclass(frozen=True)
class NpsSummary:
    n: int
    promoters: int
    passives: int
    detractors: int
    score: float | None  # -100 .. 100
    ci_low: float | None
    ci_high: float | None

    @property
    def margin(self) -> float | None:
        if self.score is None or self.ci_low is None or self.ci_high is None:
            return None
        return round((self.ci_high - self.ci_low) / 2, 1)

    @property
    def small_sample(self) -> bool:
        return self.n < SMALL_SAMPLE

    def share(self, category: str) -> float:
        count = {"promoter": self.promoters, "passive": self.passives}.get(
            category, self.detractors
        )
        return round(100 * count / self.n, 1) if self.n else 0.0


def nps_from_counts(promoters: int, passives: int, detractors: int) -> NpsSummary:
    n = promoters + passives + detractors
    if n == 0:
        return NpsSummary(0, 0, 0, 0, None, None, None)
    p, d = promoters / n, detractors / n
    score = 100 * (p - d)
    ci_low = ci_high = None
    if n >= 2:
        variance = max(0.0, p + d - (p - d) ** 2)
        half = Z95 * 100 * math.sqrt(variance / n)
        ci_low, ci_high = max(-100.0, score - half), min(100.0, score + half)
        ci_low, ci_high = round(ci_low, 1), round(ci_high, 1)
    return NpsSummary(n, promoters, passives, detractors, round(score, 1), ci_low, ci_high)


def _responses(
    survey: Survey | None, customer_ids: Iterable[int] | None = None
) -> QuerySet[Response]:
    qs = Response.objects.all()
    if survey is not None:
        qs = qs.filter(survey=survey)
    if customer_ids is not None:
        qs = qs.filter(customer_id__in=list(customer_ids))
    return qs


def _nps_counts(qs: QuerySet[Response]) -> dict[str, int]:
    return qs.aggregate(
        promoters=Count("id", filter=Q(nps__gte=PROMOTER_MIN)),
        passives=Count("id", filter=Q(nps__gt=DETRACTOR_MAX, nps__lt=PROMOTER_MIN)),
        detractors=Count("id", filter=Q(nps__lte=DETRACTOR_MAX)),
    )


def nps_summary(
    *,
    survey: Survey | None = None,
    customer_ids: Iterable[int] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> NpsSummary:
    qs = _responses(survey, customer_ids)
    if since is not None:
        qs = qs.filter(submitted_at__gte=since)
    if until is not None:
        qs = qs.filter(submitted_at__lt=until)
    c = _nps_counts(qs)
    return nps_from_counts(c["promoters"], c["passives"], c["detractors"])


def nps_trend(*, survey: Survey | None = None) -> list[tuple[str, NpsSummary]]:
    """NPS per calendar month (Japan time) of the answers: [("2026-11", summary), ...]."""
    rows = (
        _responses(survey)
        .filter(nps__isnull=False)
        .annotate(month=TruncMonth("submitted_at", tzinfo=JST))
        .values("month")
        .annotate(
            promoters=Count("id", filter=Q(nps__gte=PROMOTER_MIN)),
            passives=Count("id", filter=Q(nps__gt=DETRACTOR_MAX, nps__lt=PROMOTER_MIN)),
            detractors=Count("id", filter=Q(nps__lte=DETRACTOR_MAX)),
        )
        .order_by("month")
    )
    return [
        (
            r["month"].strftime("%Y-%m"),
            nps_from_counts(r["promoters"], r["passives"], r["detractors"]),
        )
        for r in rows
    ]


def nps_by_group(
    *, survey: Survey | None, groups: Mapping[str, Iterable[int]]
) -> list[tuple[str, NpsSummary]]:
    """NPS of the responses of each group of customers (label → customer ids), largest
    groups first. A customer may be in several groups (segments overlap)."""
    out: list[tuple[str, NpsSummary]] = []
    for label, ids in groups.items():
        ids = list(ids)
        if not ids:
            continue
        out.append((label, nps_summary(survey=survey, customer_ids=ids)))
    return sorted((x for x in out if x[1].n), key=lambda x: (-x[1].n, x[0]))


@dataclass(frozen=True)
class CsatSummary:
    n: int
    satisfied: int
    score: float | None  # % satisfied
    ci_low: float | None
    ci_high: float | None
    mean: float | None


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    if n == 0:
        return None
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def csat_summary(*, survey: Survey | None = None) -> CsatSummary:
    qs = _responses(survey).filter(csat__isnull=False)
    rows = dict(qs.values_list("csat").annotate(n=Count("id")).values_list("csat", "n"))
    n = sum(rows.values())
    if not n:
        return CsatSummary(0, 0, None, None, None, None)
    satisfied = rows.get(4, 0) + rows.get(5, 0)
    interval = wilson(satisfied, n)
    assert interval is not None
    mean = sum(k * v for k, v in rows.items()) / n
    return CsatSummary(
        n,
        satisfied,
        round(100 * satisfied / n, 1),
        round(100 * interval[0], 1),
        round(100 * interval[1], 1),
        round(mean, 2),
    )


@dataclass(frozen=True)
class ResponseRate:
    invited: int
    responded: int  # responses through an invitation
    anonymous: int
    total: int

    @property
    def rate(self) -> float | None:
        return round(100 * self.responded / self.invited, 1) if self.invited else None


def response_rate(*, survey: Survey) -> ResponseRate:
    invited = Invitation.objects.filter(survey=survey).count()
    responded = Invitation.objects.filter(survey=survey, responded_at__isnull=False).count()
    total = Response.objects.filter(survey=survey).count()
    anonymous = Response.objects.filter(survey=survey, customer__isnull=True).count()
    return ResponseRate(invited, responded, anonymous, total)


def question_distribution(question: Question) -> list[tuple[str, int]]:
    """(value, count) of a scored or choice question's answers, every value listed."""
    answers = Answer.objects.filter(question=question)
    if question.score_range:
        low, high = question.score_range
        counts = dict(
            answers.values_list("score").annotate(n=Count("id")).values_list("score", "n")
        )
        return [(str(v), counts.get(v, 0)) for v in range(low, high + 1)]
    if question.kind in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
        counter: Counter[str] = Counter()
        for choices in answers.values_list("choices", flat=True):
            counter.update(choices or [])
        return [(c["value"], counter.get(c["value"], 0)) for c in question.choices]
    return []


# --- free text ------------------------------------------------------------------------------


def _key(term: str) -> str:
    """Counting key: English words by their light stem, Japanese lemmas as they are."""
    return stem_en(term) if term.isascii() else term


@dataclass(frozen=True)
class TermCount:
    term: str  # the most frequent surface form of the key
    answers: int  # in how many answers it occurs (document frequency)


def _top(counts: Counter[str], surfaces: Mapping[str, Counter[str]], top: int) -> list[TermCount]:
    return [
        TermCount(surfaces[k].most_common(1)[0][0], n)
        for k, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    ]


def text_answers(*, survey: Survey, category: str | None = None) -> QuerySet[Answer]:
    qs = Answer.objects.filter(response__survey=survey, question__kind=QuestionKind.TEXT).exclude(
        text=""
    )
    if category == "promoter":
        qs = qs.filter(response__nps__gte=PROMOTER_MIN)
    elif category == "passive":
        qs = qs.filter(response__nps__gt=DETRACTOR_MAX, response__nps__lt=PROMOTER_MIN)
    elif category == "detractor":
        qs = qs.filter(response__nps__lte=DETRACTOR_MAX)
    return qs


def keyword_frequency(
    *, survey: Survey, category: str | None = None, top: int = 20, phrases: bool = False
) -> list[TermCount]:
    """The most frequent content words (or, with `phrases`, two-word phrases) of the
    survey's free-text answers, optionally of one NPS category, by the number of answers
    that mention them. Uses the terms stored with each answer."""
    counts: Counter[str] = Counter()
    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    for terms, language in (
        text_answers(survey=survey, category=category)
        .values_list("terms", "language")
        .iterator(chunk_size=2000)
    ):
        items = ngrams(terms, 2, lang=language or "en") if phrases else terms
        seen: set[str] = set()
        for item in items:
            key = _key(item) if not phrases else " ".join(_key(t) for t in item.split(" "))
            surfaces[key][item] += 1
            if key not in seen:
                seen.add(key)
                counts[key] += 1
    return _top(counts, surfaces, top)


def keywords_by_category(
    *, survey: Survey, top: int = 15, phrases: bool = False
) -> dict[str, list[TermCount]]:
    return {
        c: keyword_frequency(survey=survey, category=c, top=top, phrases=phrases)
        for c in CATEGORIES
    }


@dataclass(frozen=True)
class SentimentSummary:
    n: int
    positive: int
    neutral: int
    negative: int
    mean: float | None


def sentiment_by_category(*, survey: Survey) -> dict[str, SentimentSummary]:
    out: dict[str, SentimentSummary] = {}
    for category in (*CATEGORIES, None):
        values = list(
            text_answers(survey=survey, category=category).values_list("sentiment", flat=True)
        )
        scored = [v for v in values if v is not None]
        out[category or "all"] = SentimentSummary(
            n=len(values),
            positive=sum(1 for v in scored if v > 0.2),
            neutral=len(values) - sum(1 for v in scored if abs(v) > 0.2),
            negative=sum(1 for v in scored if v < -0.2),
            mean=round(sum(scored) / len(scored), 3) if scored else None,
        )
    return out


def recent_comments(
    *, survey: Survey, category: str | None = None, limit: int = 20
) -> QuerySet[Answer]:
    return (
        text_answers(survey=survey, category=category)
        .select_related("response", "response__customer")
        .order_by("-response__submitted_at", "-id")[:limit]
    )


# --- per customer and export ----------------------------------------------------------------


def customer_responses(*, customer_id: int, limit: int = 10) -> list[Response]:
    return list(
        Response.objects.filter(customer_id=customer_id)
        .select_related("survey")
        .prefetch_related("answers__question")
        .order_by("-submitted_at")[:limit]
    )


def answer_display(answer: Answer, language: str = "ja") -> str:
    if answer.score is not None:
        return str(answer.score)
    if answer.choices:
        return ", ".join(answer.question.choice_label(v, language) for v in answer.choices)
    return answer.text


def export_rows(*, survey: Survey, language: str = "ja") -> Iterator[list[Any]]:
    """CSV rows: a header, then one row per response (answers of every version's questions,
    by question key)."""
    questions = list(Question.objects.filter(survey=survey).order_by("version", "position"))
    keys: list[str] = []
    for q in questions:
        if q.key not in keys:
            keys.append(q.key)
    yield [
        "response_id",
        "submitted_at",
        "customer_id",
        "version",
        "language",
        "nps",
        "nps_category",
        "csat",
        *keys,
    ]
    responses = (
        Response.objects.filter(survey=survey)
        .prefetch_related("answers__question")
        .order_by("submitted_at", "id")
    )
    for r in responses.iterator(chunk_size=500):
        by_key = {a.question.key: answer_display(a, language) for a in r.answers.all()}
        yield [
            r.pk,
            r.submitted_at.astimezone(JST).isoformat(),
            r.customer_id or "",
            r.version,
            r.language,
            "" if r.nps is None else r.nps,
            nps_category(r.nps) or "",
            "" if r.csat is None else r.csat,
            *[_cell(by_key.get(k, "")) for k in keys],
        ]


def _cell(value: Any) -> Any:
    """Spreadsheet-safe: text starting with = + - @ (a formula) gets a leading apostrophe."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
