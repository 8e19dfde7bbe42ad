"""Shared test fixtures. The database is SQLite by default; KIZUNA_TEST_DB=postgresql runs
the same suite on a real PostgreSQL server started here by pytest-postgresql."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
from pytest_postgresql import factories

from kizuna.core import events as bus

# A wrapper that runs the server as the postgres user when the tests run as root.
PG_CTL = str(Path(__file__).parent / "tests" / "support" / "pg_ctl")
# A throwaway server: durability is not what the tests check, and without fsync the suite
# does not wait on the disk at every commit.
postgresql_server = factories.postgresql_proc(
    executable=PG_CTL,
    port=None,
    postgres_options="-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(request: pytest.FixtureRequest) -> None:
    from django.conf import settings

    if os.environ.get("KIZUNA_TEST_DB") != "postgresql":
        return
    proc = request.getfixturevalue("postgresql_server")
    db = settings.DATABASES["default"]
    assert db["ENGINE"] == "django.db.backends.postgresql"
    # Mutated in place: Django's connection holds this very dict.
    db.update(HOST=proc.host, PORT=proc.port, USER=proc.user, PASSWORD=proc.password or "")


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests may only talk to this machine."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        if isinstance(address, tuple) and self.family in (socket.AF_INET, socket.AF_INET6):
            host = str(address[0])
            if not (host.startswith("127.") or host in {"::1", "localhost"}):
                raise OSError(f"test tried to reach {host}: network is blocked in tests")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


@pytest.fixture(autouse=True)
def _clean_bus() -> Iterator[None]:
    """Subscribers registered by a test do not leak into the next one."""
    saved = {k: list(v) for k, v in bus._subscribers.items()}
    saved_tx = {k: list(v) for k, v in bus._in_transaction.items()}
    yield
    bus._subscribers.clear()
    bus._subscribers.update(saved)
    bus._in_transaction.clear()
    bus._in_transaction.update(saved_tx)


@pytest.fixture
def make_staff(db: None) -> Callable[..., object]:
    from kizuna.iam.services import staff_user_create

    counter = {"n": 0}

    def make(role: str = "admin", username: str | None = None, password: str = "s3cret-Pass!"):
        counter["n"] += 1
        return staff_user_create(
            username=username or f"{role}{counter['n']}", password=password, role=role
        )

    return make


@pytest.fixture
def admin_user(make_staff: Callable[..., object]) -> object:
    return make_staff("admin")


@pytest.fixture
def commit_like_autocommit(db: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """In a test run inside a rolled-back transaction, `on_commit` callbacks run when they
    would in production (autocommit): as soon as the outermost `atomic` block of the code
    under test exits cleanly, or at once when registered outside any block. A test that
    only needs the after-commit subscribers of its requests and service calls uses this
    instead of `django_db(transaction=True)`, whose flush after each test is slow.
    Keep transaction=True where another thread or process must see committed rows."""
    import logging

    from django.db import DEFAULT_DB_ALIAS, connections, transaction

    connection = connections[DEFAULT_DB_ALIAS]  # the wrapper itself, not the proxy
    if not connection.in_atomic_block:  # a transaction=True test: real commits already
        yield
        return
    logger = logging.getLogger("django.db.backends.base")
    base_depth = len(connection.savepoint_ids)  # the test's own transaction
    base_callbacks = len(connection.run_on_commit)
    real_exit = transaction.Atomic.__exit__
    real_on_commit = type(connection).on_commit

    def run(func: Callable[[], object], robust: bool) -> None:
        if not robust:
            func()
            return
        try:
            func()
        except Exception as e:  # what Django does for a robust callback
            name = func.__qualname__
            logger.error("Error calling %s in on_commit() (%s).", name, e, exc_info=True)

    def run_pending() -> None:
        # Taken off the list before running, as a commit does: a callback that opens its
        # own block then sees only what it registered itself.
        pending: list[Any] = connection.run_on_commit[base_callbacks:]
        del connection.run_on_commit[base_callbacks:]
        for _sids, func, robust in pending:
            run(func, robust)

    def exit(
        self: transaction.Atomic,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        real_exit(self, exc_type, exc, tb)
        if (
            self.using in (None, DEFAULT_DB_ALIAS)
            and len(connection.savepoint_ids) == base_depth
            and exc_type is None
            and not connection.needs_rollback
        ):
            run_pending()

    def on_commit(self: Any, func: Callable[[], object], robust: bool = False) -> None:
        if self is connection and len(self.savepoint_ids) == base_depth:
            run(func, robust)  # outside any block of the code under test: autocommit
        else:
            real_on_commit(self, func, robust)

    monkeypatch.setattr(transaction.Atomic, "__exit__", exit)
    monkeypatch.setattr(type(connection), "on_commit", on_commit)
    yield


@pytest.fixture
def ratelimit_clock_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    """django-ratelimit counts in fixed windows of wall-clock time; a test that sends N + 1
    requests to see the (N + 1)th refused fails when they straddle a window's end (a slow
    run). Pin the clock django-ratelimit reads to the test's start, so all of the test's
    requests fall in one window. The cache entries still expire in real time."""
    import time
    import types

    from django_ratelimit import core as ratelimit_core

    now = time.time()
    monkeypatch.setattr(ratelimit_core, "time", types.SimpleNamespace(time=lambda: now))
