"""The `commit_like_autocommit` fixture (conftest.py) runs on_commit callbacks when
production would: after the outermost block of the code under test commits, never for a
rolled-back block, at once outside any block, each once."""

from __future__ import annotations

import pytest
from django.db import transaction

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("commit_like_autocommit")]


def test_callbacks_run_when_the_outermost_block_exits() -> None:
    ran: list[str] = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("outer"))
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("inner"))
        assert ran == []  # an inner block's exit is no commit
    assert ran == ["outer", "inner"]
    with transaction.atomic():
        pass
    assert ran == ["outer", "inner"]  # each runs once


def test_a_rolled_back_block_runs_nothing() -> None:
    ran: list[str] = []
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        transaction.on_commit(lambda: ran.append("outer"))
        1 / 0  # noqa: B018
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("kept"))
        try:
            with transaction.atomic():
                transaction.on_commit(lambda: ran.append("rolled back"))
                raise ValueError
        except ValueError:
            pass
    assert ran == ["kept"]


def test_outside_any_block_a_callback_runs_at_once_and_may_open_a_block() -> None:
    ran: list[str] = []

    def opens_a_block() -> None:
        with transaction.atomic():
            transaction.on_commit(lambda: ran.append("nested"))
        ran.append("after block")

    transaction.on_commit(lambda: ran.append("now"))
    assert ran == ["now"]
    with transaction.atomic():
        transaction.on_commit(opens_a_block)
    assert ran == ["now", "nested", "after block"]


def test_a_robust_callback_that_fails_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: list[str] = []

    def broken() -> None:
        raise RuntimeError("boom")

    with transaction.atomic():
        transaction.on_commit(broken, robust=True)
        transaction.on_commit(lambda: ran.append("next"))
    assert ran == ["next"]
    assert "boom" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_in_a_transaction_true_test_real_commits_are_left_alone() -> None:
    ran: list[str] = []
    with transaction.atomic():
        transaction.on_commit(lambda: ran.append("committed"))
        assert ran == []
    assert ran == ["committed"]
