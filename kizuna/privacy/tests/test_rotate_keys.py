"""`kizuna rotate-keys`: credentials encrypted under the old key are readable with the new
one afterwards; a wrong old key changes nothing."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.test.utils import override_settings

from kizuna.__main__ import ALIASES
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
