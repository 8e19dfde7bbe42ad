from __future__ import annotations

import math

import pytest

from kizuna.customers.models import Customer
from kizuna.customers.services import customer_create
from kizuna.surveys import links, selectors, services
from kizuna.surveys.models import Survey

pytestmark = pytest.mark.django_db


def test_nps_from_counts_and_interval() -> None:
    s = selectors.nps_from_counts(promoters=50, passives=30, detractors=20)
    assert s.n == 100 and s.score == 30.0
    # variance of the +1/0/-1 scores: p + d - (p - d)^2 = 0.5 + 0.2 - 0.09 = 0.61
    half = 1.959964 * 100 * math.sqrt(0.61 / 100)
    assert s.ci_low == round(30 - half, 1) and s.ci_high == round(30 + half, 1)
    assert s.margin == pytest.approx(half, abs=0.1)
    assert s.share("promoter") == 50.0 and s.share("detractor") == 20.0
    assert not s.small_sample
    empty = selectors.nps_from_counts(0, 0, 0)
    assert empty.score is None and empty.ci_low is None
    one = selectors.nps_from_counts(1, 0, 0)
    assert one.score == 100.0 and one.ci_low is None and one.small_sample
    all_promoters = selectors.nps_from_counts(40, 0, 0)
    assert all_promoters.ci_low == 100.0 and all_promoters.ci_high == 100.0


def test_wilson_interval() -> None:
    low, high = selectors.wilson(8, 10) or (0, 0)
    assert 0.49 < low < 0.5 and 0.94 < high < 0.95
    assert selectors.wilson(0, 0) is None


def _answer(survey: Survey, n: int, score: int, why: str = "") -> Customer:
    customer = customer_create(data={"email": f"c{n}@example.jp"})
    answers: dict = {"nps": score}
    if why:
        answers["why"] = why
    services.response_submit(survey=survey, customer=customer, answers=answers)
    return customer


def test_summary_trend_groups_and_rate(survey: Survey) -> None:
    customers = [
        _answer(survey, 1, 10, "スタッフの対応が丁寧で満足です"),
        _answer(survey, 2, 9, "Friendly staff and great coffee"),
        _answer(survey, 3, 8),
        _answer(survey, 4, 3, "配送が遅くて残念でした。配送をもっと早く"),
        _answer(survey, 5, 0, "Delivery was late; the delivery box was damaged"),
    ]
    summary = selectors.nps_summary(survey=survey)
    assert (summary.promoters, summary.passives, summary.detractors) == (2, 1, 2)
    assert summary.score == 0.0
    trend = selectors.nps_trend(survey=survey)
    assert len(trend) == 1 and trend[0][1].n == 5
    groups = selectors.nps_by_group(
        survey=survey,
        groups={"gold": [customers[0].pk, customers[1].pk], "new": [customers[4].pk], "none": []},
    )
    assert [(label, s.score) for label, s in groups] == [("gold", 100.0), ("new", -100.0)]
    extra = customer_create(data={"email": "x@example.jp"})
    links.invitation_for(survey=survey, customer=extra)
    rate = selectors.response_rate(survey=survey)
    assert (rate.invited, rate.responded, rate.total) == (1, 0, 5) and rate.rate == 0.0


def test_keywords_by_category_and_sentiment(survey: Survey) -> None:
    _answer(survey, 1, 10, "スタッフの対応が丁寧で満足です")
    _answer(survey, 2, 9, "Friendly staff and great coffee")
    _answer(survey, 4, 3, "配送が遅くて残念でした。配送をもっと早く")
    _answer(survey, 5, 0, "Delivery was late; the deliveries were damaged")
    _answer(survey, 6, 2, "配送の遅延")
    detractor_words = selectors.keyword_frequency(survey=survey, category="detractor")
    top = {t.term: t.answers for t in detractor_words}
    assert top["配送"] == 2  # counted once per answer though said twice in one
    # "delivery" and "deliveries" are one key; shown as the form used most.
    assert top["delivery"] == 1 or top.get("deliveries") == 1
    assert "スタッフ" not in top
    promoter_words = {
        t.term for t in selectors.keyword_frequency(survey=survey, category="promoter")
    }
    assert {"スタッフ", "staff", "coffee"} <= promoter_words
    phrases = {t.term for t in selectors.keyword_frequency(survey=survey, phrases=True)}
    assert "great coffee" in phrases
    by_cat = selectors.sentiment_by_category(survey=survey)
    assert by_cat["promoter"].positive == 2 and by_cat["detractor"].negative >= 2
    assert by_cat["all"].n == 5


def test_export_rows_are_spreadsheet_safe(survey: Survey) -> None:
    _answer(survey, 1, 6, '=HYPERLINK("http://evil")')
    rows = list(selectors.export_rows(survey=survey))
    header, row = rows
    assert header[:8] == [
        "response_id",
        "submitted_at",
        "customer_id",
        "version",
        "language",
        "nps",
        "nps_category",
        "csat",
    ]
    assert row[5] == 6 and row[6] == "detractor"
    assert row[header.index("why")].startswith("'=")


def test_question_distribution(survey: Survey) -> None:
    _answer(survey, 1, 10)
    _answer(survey, 2, 10)
    nps_question = selectors.questions_of(survey)[0]
    dist = dict(selectors.question_distribution(nps_question))
    assert dist["10"] == 2 and dist["0"] == 0 and len(dist) == 11
