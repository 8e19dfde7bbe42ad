"""Server-side pages of a conditional survey (`kizuna.surveys.paging`)."""

from __future__ import annotations

import pytest

from kizuna.surveys import paging, services
from kizuna.surveys.models import Survey

pytestmark = pytest.mark.django_db


def _keys(pages: list) -> list[list[str]]:
    return [[q.key for q in page] for page in pages]


def test_a_page_ends_before_a_question_that_depends_on_it(survey: Survey) -> None:
    questions = services.current_questions(survey)
    assert _keys(paging.paginate(questions, {})) == [["nps", "why"], ["drink"]]
    assert _keys(paging.paginate(questions, {"nps": 4})) == [["nps", "why"], ["fix", "drink"]]
    assert _keys(paging.paginate(questions, {"nps": 9})) == [["nps", "why"], ["drink"]]
    first = paging.paginate(questions, {})[0]
    assert paging.may_follow(questions, first, {}) is True
    last = paging.paginate(questions, {"nps": 4})[1]
    assert paging.may_follow(questions, last, {"nps": 4}) is False


def test_chained_conditions_make_one_page_per_level() -> None:
    survey = services.survey_create(
        data={
            "slug": "chain",
            "title": "連鎖",
            "questions": [
                {"key": "a", "kind": "csat", "text": "A", "required": True},
                {
                    "key": "b",
                    "kind": "csat",
                    "text": "B",
                    "show_if": {"question": "a", "op": "lte", "value": 2},
                },
                {
                    "key": "c",
                    "kind": "text",
                    "text": "C",
                    "show_if": {"question": "b", "op": "eq", "value": 1},
                },
            ],
        }
    )
    questions = services.current_questions(survey)
    assert _keys(paging.paginate(questions, {"a": 1, "b": 1})) == [["a"], ["b"], ["c"]]
    assert _keys(paging.paginate(questions, {"a": 1, "b": 3})) == [["a"], ["b"]]
    # c depends on b, hidden when a is high: no page for either.
    assert _keys(paging.paginate(questions, {"a": 5})) == [["a"]]
    assert paging.may_follow(questions, paging.paginate(questions, {"a": 5})[0], {"a": 5}) is True
