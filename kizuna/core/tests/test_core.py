from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest
from django.db import transaction

from kizuna.core import config, events, money
from kizuna.core.models import WorkerHeartbeat
from kizuna.core.selectors import worker_status
from kizuna.settings.base import _huey


def _event(kind: str = "thing.happened") -> events.DomainEvent:
    return events.DomainEvent(type=kind, occurred_at=datetime(2026, 1, 1, tzinfo=UTC))


@pytest.mark.django_db(transaction=True)
def test_bus_delivers_after_commit_and_not_after_rollback() -> None:
    seen: list[str] = []
    events.subscribe("thing.happened", lambda e: seen.append("committed"))
    with transaction.atomic():
        events.publish(_event())
        assert seen == []  # not before the commit
    assert seen == ["committed"]
    try:
        with transaction.atomic():
            events.publish(_event())
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert seen == ["committed"]


def test_a_failing_subscriber_does_not_stop_the_others() -> None:
    seen: list[str] = []

    def broken(event: events.DomainEvent) -> None:
        raise ValueError("boom")

    events.subscribe("thing.happened", broken)
    events.subscribe("*", lambda e: seen.append(e.type))
    events.dispatch(_event())
    assert seen == ["thing.happened"]


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (123456, "JPY", "¥123,456"),
        (-500, "JPY", "-¥500"),
        (1999, "USD", "$19.99"),
        (0, "JPY", "¥0"),
    ],
)
def test_money_formatting(amount: int, currency: str, text: str) -> None:
    assert money.format_money(amount, currency) == text


def test_config_reads_environment_and_rejects_malformed_values(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("KIZUNA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KIZUNA_QUEUE_URL", "redis://127.0.0.1:6379/3")
    monkeypatch.setenv("KIZUNA_ALLOWED_HOSTS", "a.example, b.example")
    loaded = config.load()
    assert loaded.database_url == f"sqlite:///{tmp_path / 'kizuna.sqlite3'}"
    assert loaded.allowed_hosts == ["a.example", "b.example"]
    monkeypatch.setenv("KIZUNA_DEBUG", "maybe")
    with pytest.raises(config.ConfigError, match="KIZUNA_DEBUG"):
        config.load()
    monkeypatch.setenv("KIZUNA_DEBUG", "false")
    monkeypatch.setenv("KIZUNA_QUEUE_URL", "amqp://nope")
    with pytest.raises(config.ConfigError, match="KIZUNA_QUEUE_URL"):
        config.load()
    monkeypatch.setenv("KIZUNA_QUEUE_URL", "redis://127.0.0.1:6379/3")
    assert config.load().worker_nice == 10
    monkeypatch.setenv("KIZUNA_WORKER_NICE", "0")
    assert config.load().worker_nice == 0
    for wrong in ("20", "-1"):
        monkeypatch.setenv("KIZUNA_WORKER_NICE", wrong)
        with pytest.raises(config.ConfigError, match="KIZUNA_WORKER_NICE must be between 0 and 19"):
            config.load()
    monkeypatch.setenv("KIZUNA_WORKER_NICE", "10")
    loaded = config.load()
    assert (loaded.tracking_process_chunk, loaded.tracking_process_chunk_max) == (5000, 50000)
    monkeypatch.setenv("KIZUNA_TRACKING_PROCESS_CHUNK", "80000")  # the ceiling follows
    assert config.load().tracking_process_chunk_max == 80000
    monkeypatch.setenv("KIZUNA_TRACKING_PROCESS_CHUNK_MAX", "1000")
    with pytest.raises(config.ConfigError, match="KIZUNA_TRACKING_PROCESS_CHUNK_MAX"):
        config.load()
    monkeypatch.setenv("KIZUNA_TRACKING_PROCESS_CHUNK", "0")
    with pytest.raises(config.ConfigError, match="at least 1"):
        config.load()


def test_queue_url_selects_the_huey_storage(tmp_path) -> None:
    assert _huey(f"sqlite:///{tmp_path}/q.sqlite3")["huey_class"] == "huey.SqliteHuey"
    redis = _huey("redis://127.0.0.1:6379/0")
    assert (redis["huey_class"], redis["url"]) == ("huey.RedisHuey", "redis://127.0.0.1:6379/0")


def _import_production(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import kizuna.settings.production"],
        env={**{k: v for k, v in os.environ.items() if not k.startswith("KIZUNA_")}, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_production_settings_fail_closed(tmp_path) -> None:
    base = {"KIZUNA_DATA_DIR": str(tmp_path)}
    no_secret = _import_production(base)
    assert no_secret.returncode != 0
    assert "KIZUNA_SECRET_KEY" in no_secret.stderr
    debug = _import_production({**base, "KIZUNA_SECRET_KEY": "x" * 60, "KIZUNA_DEBUG": "true"})
    assert debug.returncode != 0
    assert "KIZUNA_DEBUG" in debug.stderr
    ok = _import_production({**base, "KIZUNA_SECRET_KEY": "x" * 60})
    assert ok.returncode == 0, ok.stderr


@pytest.mark.django_db
def test_worker_heartbeat_task_marks_the_worker_online() -> None:
    from kizuna.core.tasks import worker_heartbeat

    assert worker_status()["online"] is False
    worker_heartbeat.call_local()
    status = worker_status()
    assert status["online"] is True
    assert status["workers"] == 1
    assert WorkerHeartbeat.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_in_transaction_subscribers_run_inside_and_can_roll_the_write_back() -> None:
    from kizuna.core.models import WorkerHeartbeat

    calls: list[bool] = []

    def reaction(event: events.DomainEvent) -> None:
        calls.append(transaction.get_connection().in_atomic_block)
        if event.properties.get("fail"):
            raise ValueError("cannot move the points")

    events.subscribe("thing.happened", reaction, in_transaction=True)
    with transaction.atomic():
        events.publish(_event())
    assert calls == [True]
    with pytest.raises(ValueError), transaction.atomic():
        WorkerHeartbeat.objects.create(worker="w", seen_at=datetime(2026, 1, 1, tzinfo=UTC))
        events.publish(
            events.DomainEvent(
                type="thing.happened",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                properties={"fail": True},
            )
        )
    assert WorkerHeartbeat.objects.count() == 0
    with pytest.raises(ValueError, match="name their event type"):
        events.subscribe("*", reaction, in_transaction=True)
