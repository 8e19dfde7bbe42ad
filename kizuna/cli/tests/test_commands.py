"""The staff commands, run through call_command as `kizuna <name>` runs them."""

from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import CommandError, call_command

from kizuna.core import ids
from kizuna.iam.models import ApiKey
from kizuna.iam.selectors import api_key_authenticate, user_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _english(settings) -> None:
    """The messages asserted below are the English ones (the default UI language is ja)."""
    settings.LANGUAGE_CODE = "en"


def _run(*args: str, stdin: str = "") -> str:
    out = io.StringIO()
    real_stdin = io.StringIO(stdin)
    import sys

    saved, sys.stdin = sys.stdin, real_stdin
    try:
        call_command(*args, stdout=out, stderr=io.StringIO())
    finally:
        sys.stdin = saved
    return out.getvalue()


def test_createuser_with_password_on_stdin() -> None:
    _run(
        "createuser",
        "hanako",
        "--role",
        "marketer",
        "--email",
        "h@example.jp",
        "--password-stdin",
        stdin="Kizuna-Str0ng-Pass\n",
    )
    user = authenticate(username="hanako", password="Kizuna-Str0ng-Pass")
    assert user is not None
    assert user_role(user) == "marketer"
    assert user.is_staff and not user.is_superuser and user.email == "h@example.jp"


def test_createuser_prompts_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = iter(["Kizuna-Str0ng-Pass", "Something-else-1"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    with pytest.raises(CommandError, match="differ"):
        _run("createuser", "taro", "--role", "analyst")
    assert not get_user_model().objects.filter(username="taro").exists()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--role", "boss"], "Kizuna-Str0ng-Pass\n", "Unknown role boss"),
        (["--role", "admin"], "123\n", "password"),
        (["--role", "admin"], "\n", "empty"),
    ],
)
def test_createuser_bad_input_creates_nothing(args: list[str], stdin: str, message: str) -> None:
    with pytest.raises(CommandError) as info:
        _run("createuser", "jiro", *args, "--password-stdin", stdin=stdin)
    assert message.lower() in str(info.value).lower() or "パスワード" in str(info.value)
    assert not get_user_model().objects.filter(username="jiro").exists()


def test_createuser_duplicate_username(make_staff: object) -> None:
    make_staff("support", username="sachiko")  # type: ignore[operator]
    with pytest.raises(CommandError, match="sachiko"):
        _run(
            "createuser",
            "sachiko",
            "--role",
            "admin",
            "--password-stdin",
            stdin="Kizuna-Str0ng-Pass\n",
        )
    assert get_user_model().objects.filter(username="sachiko").count() == 1


def test_apikey_create_list_revoke(make_staff: object) -> None:
    make_staff("admin", username="boss")  # type: ignore[operator]
    out = _run(
        "apikey", "create", "--name", "warehouse sync", "--role", "analyst", "--user", "boss"
    )
    secrets = [line for line in out.splitlines() if line.startswith("kzk_")]
    assert len(secrets) == 1  # printed exactly once
    secret = secrets[0].strip()
    key = ApiKey.objects.get()
    assert key.digest == ids.digest(secret) and secret not in (key.prefix, key.digest)
    assert secret.startswith(key.prefix) and len(key.prefix) < len(secret)
    assert (key.name, key.role, key.created_by.username) == ("warehouse sync", "analyst", "boss")
    authenticated = api_key_authenticate(secret)
    assert authenticated is not None and authenticated.pk == key.pk

    listing = _run("apikey", "list")
    assert key.prefix in listing or key.prefix in listing.replace("\n", "")
    assert secret not in listing

    _run("apikey", "revoke", key.prefix)
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert api_key_authenticate(secret) is None
    with pytest.raises(CommandError, match="already revoked"):
        _run("apikey", "revoke", key.prefix)


def test_apikey_bad_input_creates_nothing(make_staff: object) -> None:
    make_staff("admin", username="boss")  # type: ignore[operator]
    with pytest.raises(CommandError, match="Unknown role"):
        _run("apikey", "create", "--name", "x", "--role", "root", "--user", "boss")
    with pytest.raises(CommandError, match="nobody"):
        _run("apikey", "create", "--name", "x", "--role", "admin", "--user", "nobody")
    with pytest.raises(CommandError):
        _run("apikey", "create", "--name", "  ", "--role", "admin", "--user", "boss")
    with pytest.raises(CommandError, match="kzk_nothere"):
        _run("apikey", "revoke", "kzk_nothere")
    assert ApiKey.objects.count() == 0


def test_a_background_lane_consumer_leaves_the_signal_handlers_alone() -> None:
    """A lane's consumer must not take SIGINT/SIGTERM: only the main queue's `run()` acts on
    a signal, so one arriving before the main consumer starts would otherwise be swallowed."""
    import signal

    from huey import MemoryHuey

    from kizuna.cli.management.commands.worker import _start_in_background

    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    consumer = MemoryHuey("lane-test", immediate=False).create_consumer(workers=1)
    _start_in_background(consumer)
    try:
        assert all(t.is_alive() for _, t in consumer.worker_threads)
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    finally:
        consumer.stop(graceful=True)
    assert not any(t.is_alive() for _, t in consumer.worker_threads)


def test_a_consumer_interrupted_while_starting_is_stopped_on_the_way_out() -> None:
    """A Ctrl-C after a consumer's threads started but before its handlers were installed
    raises KeyboardInterrupt out of `run()`: its threads (not daemons) must still stop, or
    the worker process never exits."""
    from huey import MemoryHuey

    from kizuna.cli.management.commands.worker import _consumers_stopped_on_exit

    huey = MemoryHuey("interrupted-test", immediate=False)
    with pytest.raises(KeyboardInterrupt), _consumers_stopped_on_exit(huey) as consumers:
        consumer = huey.create_consumer(workers=1)
        consumer.scheduler.start()
        for _, thread in consumer.worker_threads:
            thread.start()
        assert all(t.is_alive() for _, t in consumer.worker_threads)
        raise KeyboardInterrupt  # where start() would have installed its handlers
    assert consumers == [consumer]
    assert not any(t.is_alive() for _, t in consumer.worker_threads)
    assert "create_consumer" not in vars(huey)  # the class's method again
