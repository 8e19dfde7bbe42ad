"""Pages of a survey for answering without client script: conditional questions are decided
on the server from the answers already given.

A page ends just before the first question whose condition (`show_if`) refers to a question
on that same page, so every question on a page depends only on answers of earlier pages; a
question whose condition does not hold is left out. Pages 1..k are therefore fixed by the
answers of pages 1..k-1, and the portal shows one page at a time (a survey without
conditions is one page). Pure functions over `Question` rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kizuna.surveys.models import Question
from kizuna.surveys.services import condition_met


def paginate(questions: Sequence[Question], answers: dict[str, Any]) -> list[list[Question]]:
    """The pages given the (cleaned) `answers` so far. Only the pages up to the first one
    whose answers are not in `answers` yet are final."""
    pages: list[list[Question]] = []
    current: list[Question] = []
    keys: set[str] = set()
    for q in questions:
        ref = q.show_if.get("question") if q.show_if else None
        if ref is not None and ref in keys:
            pages.append(current)
            current, keys = [], set()
        if q.show_if and not condition_met(q.show_if, answers):
            continue
        current.append(q)
        keys.add(q.key)
    if current:
        pages.append(current)
    return pages


def may_follow(
    questions: Sequence[Question], page: Sequence[Question], answers: dict[str, Any]
) -> bool:
    """Whether a question after `page` may still be shown: one without a condition, one
    whose condition waits on an answer not given yet, or one whose condition holds."""
    if not page:
        return False
    last = max(q.position for q in page)
    decided = {q.key for q in questions if q.position < min(p.position for p in page)}
    for q in questions:
        if q.position <= last:
            continue
        ref = q.show_if.get("question") if q.show_if else None
        if ref is None or ref not in decided or condition_met(q.show_if, answers):
            return True
    return False
