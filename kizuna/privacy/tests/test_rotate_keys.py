"""`kizuna rotate-keys`: credentials encrypted under the old key are readable with the new
one afterwards; a wrong old key changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from kizuna.__main__ import ALIASES
from kizuna.line_marketing.models import LoginChannel
from kizuna.messaging import crypto
from kizuna.messaging.models import Channel


@pytest.mark.django_db
def test_rotate_keys_reencrypts_with_the_current_key(settings: object) -> None:
    secret = {"password": "smtp-pass"}
    with override_settings(KIZUNA_ENCRYPTION_KEY="old passphrase"):
        token = crypto.encrypt(secret)
    channel = Channel.objects.create(kind="email", name="Mail", credentials_encrypted=token)
    settings.KIZUNA_ENCRYPTION_KEY = "new passphrase"  # type: ignore[attr-defined]
    with pytest.raises(crypto.CredentialsError):
        crypto.decrypt(channel.credentials_encrypted)

    with pytest.raises(CommandError):
        call_command("rotate_keys", "--old-key", "wrong", stdout=StringIO())
    channel.refresh_from_db()
    assert channel.credentials_encrypted == token

    out = StringIO()
    call_command("rotate_keys", "--old-key", "old passphrase", "--dry-run", stdout=out)
    assert "Dry run" in out.getvalue()
    channel.refresh_from_db()
    assert channel.credentials_encrypted == token

    call_command("rotate_keys", "--old-key", "old passphrase", stdout=StringIO())
    channel.refresh_from_db()
    assert crypto.decrypt(channel.credentials_encrypted) == secret
    out = StringIO()
    call_command("rotate_keys", "--old-key", "old passphrase", stdout=out)
    assert "0 channel(s) re-encrypted, 1 already" in out.getvalue()
    assert ALIASES["rotate-keys"] == "rotate_keys"


@pytest.mark.django_db
def test_rotate_keys_covers_line_login_secrets(settings: object) -> None:
    with override_settings(KIZUNA_ENCRYPTION_KEY="old passphrase"):
        token = crypto.encrypt({"secret": "login-secret"})
    line = Channel.objects.create(kind="line", name="LINE")
    login = LoginChannel.objects.create(
        channel=line, login_channel_id="1650000000", secret_encrypted=token
    )
    settings.KIZUNA_ENCRYPTION_KEY = "new passphrase"  # type: ignore[attr-defined]
    with pytest.raises(CommandError, match="LINE Login 1650000000"):
        call_command("rotate_keys", "--old-key", "wrong", stdout=StringIO())
    out = StringIO()
    call_command("rotate_keys", "--old-key", "old passphrase", stdout=out)
    assert "1 channel(s) re-encrypted" in out.getvalue()
    login.refresh_from_db()
    assert crypto.decrypt(login.secret_encrypted) == {"secret": "login-secret"}
