"""Shared test fixtures. The database is SQLite by default; KIZUNA_TEST_DB=postgresql runs
the same suite on a real PostgreSQL server started here by pytest-postgresql."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

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
