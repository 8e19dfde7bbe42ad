"""`kizuna rotate-keys --old-key OLD`: re-encrypt every channel's stored credentials (and
every LINE Login channel's secret) with the current KIZUNA_ENCRYPTION_KEY (or the key derived
from SECRET_KEY when it is unset), after the key was changed. `--old-key` is the previous
KIZUNA_ENCRYPTION_KEY; for an installation that derived it from SECRET_KEY, give the previous
SECRET_KEY with `--old-secret-key`. All or nothing: one secret that the old key cannot
decrypt stops the command unchanged."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.test.utils import override_settings
from django.utils.translation import gettext as _

from kizuna.line_marketing.models import LoginChannel
from kizuna.messaging import crypto
from kizuna.messaging.models import Channel

# Every secret stored encrypted: model, field, how to name a row in an error.
ENCRYPTED: list[tuple[Any, str, Any]] = [
    (Channel, "credentials_encrypted", lambda row: row.name),
    (LoginChannel, "secret_encrypted", lambda row: f"LINE Login {row.login_channel_id}"),
]


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
            for model, field, name in ENCRYPTED:
                rows = model.objects.select_for_update().exclude(**{field: ""})
                for row in rows.order_by("pk"):
                    token = getattr(row, field)
                    try:
                        crypto.decrypt(token)
                        already += 1  # readable with the current key: nothing to do
                        continue
                    except crypto.CredentialsError:
                        pass
                    try:
                        with override_settings(**old):
                            data = crypto.decrypt(token)
                    except crypto.CredentialsError as exc:
                        raise CommandError(
                            _("Channel %(name)s cannot be decrypted with the old key either.")
                            % {"name": name(row)}
                        ) from exc
                    if not options["dry_run"]:
                        model.objects.filter(pk=row.pk).update(**{field: crypto.encrypt(data)})
                    rotated += 1
        message = _("%(rotated)d channel(s) re-encrypted, %(already)d already on the current key.")
        if options["dry_run"]:
            message = _("Dry run, nothing changed: ") + message
        self.stdout.write(message % {"rotated": rotated, "already": already})
