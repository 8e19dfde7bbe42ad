"""`kizuna rotate-keys --old-key OLD`: re-encrypt every channel's stored credentials with
the current KIZUNA_ENCRYPTION_KEY (or the key derived from SECRET_KEY when it is unset), after
the key was changed. `--old-key` is the previous KIZUNA_ENCRYPTION_KEY; for an installation
that derived it from SECRET_KEY, give the previous SECRET_KEY with `--old-secret-key`.
All or nothing: one channel that the old key cannot decrypt stops the command unchanged."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test.utils import override_settings
from django.utils.translation import gettext as _

from kizuna.messaging import crypto
from kizuna.messaging.models import Channel


class Command(BaseCommand):
    help = _("Re-encrypt stored channel credentials with the current encryption key.")

    def add_arguments(self, parser: CommandParser) -> None:
        old = parser.add_mutually_exclusive_group(required=True)
        old.add_argument("--old-key", help=_("The previous KIZUNA_ENCRYPTION_KEY."))
        old.add_argument(
            "--old-secret-key", help=_("The previous SECRET_KEY (when no encryption key was set).")
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help=_("Check that every channel decrypts; change nothing."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["old_key"]:
            old = {"KIZUNA_ENCRYPTION_KEY": options["old_key"]}
        else:
            old = {"KIZUNA_ENCRYPTION_KEY": "", "SECRET_KEY": options["old_secret_key"]}
        rotated = already = 0
        with transaction.atomic():
            channels = Channel.objects.select_for_update().exclude(credentials_encrypted="")
            for channel in channels.order_by("pk"):
                try:
                    crypto.decrypt(channel.credentials_encrypted)
                    already += 1  # readable with the current key: nothing to do
                    continue
                except crypto.CredentialsError:
                    pass
                try:
                    with override_settings(**old):
                        data = crypto.decrypt(channel.credentials_encrypted)
                except crypto.CredentialsError as exc:
                    raise CommandError(
                        _("Channel %(name)s cannot be decrypted with the old key either.")
                        % {"name": channel.name}
                    ) from exc
                if not options["dry_run"]:
                    Channel.objects.filter(pk=channel.pk).update(
                        credentials_encrypted=crypto.encrypt(data)
                    )
                rotated += 1
        message = _("%(rotated)d channel(s) re-encrypted, %(already)d already on the current key.")
        if options["dry_run"]:
            message = _("Dry run, nothing changed: ") + message
        self.stdout.write(message % {"rotated": rotated, "already": already})
