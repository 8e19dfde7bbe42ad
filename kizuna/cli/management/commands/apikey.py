"""`kizuna apikey create|list|revoke`: keys for the REST API."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import pgettext
from rich import box
from rich.console import Console
from rich.table import Table

from kizuna.iam.models import ApiKey
from kizuna.iam.roles import Role
from kizuna.iam.services import api_key_create, api_key_revoke


class Command(BaseCommand):
    help = _("Create, list and revoke API keys.")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help=_("Create a key; its secret is shown once."))
        create.add_argument("--name", required=True)
        create.add_argument("--role", required=True, help=", ".join(Role.values))
        create.add_argument(
            "--user", required=True, help=_("Username of the staff user the key is created by.")
        )
        actions.add_parser("list", help=_("List keys (never their secrets)."))
        revoke = actions.add_parser("revoke", help=_("Revoke a key by its prefix."))
        revoke.add_argument("prefix")
        revoke.add_argument(
            "--user",
            default="",
            help=_("Staff user recorded as revoking (default: the key's creator)."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        self.console = Console(file=self.stdout._out)  # type: ignore[arg-type]
        getattr(self, f"_{options['action']}")(options)

    def _staff(self, username: str) -> User:
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(_("No active staff user named %(name)s.") % {"name": username})
        assert isinstance(user, User)
        return user

    def _create(self, options: dict[str, Any]) -> None:
        if options["role"] not in Role.values:
            raise CommandError(
                _("Unknown role %(role)s; choose one of %(roles)s.")
                % {"role": options["role"], "roles": ", ".join(Role.values)}
            )
        user = self._staff(options["user"])
        try:
            issued = api_key_create(name=options["name"], role=options["role"], created_by=user)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.console.print(
            "[yellow]"
            + _(
                "API key %(name)s (%(role)s), prefix %(prefix)s. Copy the secret below now: "
                "this is the only time it is shown; kizuna keeps only its digest."
            )
            % {
                "name": issued.api_key.name,
                "role": issued.api_key.role,
                "prefix": issued.api_key.prefix,
            }
        )
        # Plain, on its own line, so nothing wraps or decorates what must be copied.
        self.stdout.write(issued.secret)

    def _list(self, options: dict[str, Any]) -> None:
        table = Table(title=_("API keys"), box=box.SIMPLE_HEAD)
        table.add_column(_("Prefix"), no_wrap=True, min_width=12)
        for column in (
            _("Name"),
            _("Role"),
            _("Created by"),
            _("Created"),
            _("Last used"),
            _("Status"),
        ):
            table.add_column(column)
        for key in ApiKey.objects.select_related("created_by").order_by("created_at"):
            table.add_row(
                key.prefix,
                key.name,
                key.role,
                key.created_by.get_username(),
                f"{key.created_at:%Y-%m-%d}",
                f"{key.last_used_at:%Y-%m-%d}" if key.last_used_at else "—",
                pgettext("api key", "active") if key.is_active else pgettext("api key", "revoked"),
            )
        if not table.row_count:
            self.console.print(_("No API keys yet."))
            return
        self.console.print(table)

    def _revoke(self, options: dict[str, Any]) -> None:
        key = ApiKey.objects.select_related("created_by").filter(prefix=options["prefix"]).first()
        if key is None:
            raise CommandError(_("No API key with prefix %(p)s.") % {"p": options["prefix"]})
        if not key.is_active:
            raise CommandError(_("The key %(p)s is already revoked.") % {"p": key.prefix})
        user = self._staff(options["user"]) if options["user"] else key.created_by
        api_key_revoke(api_key=key, revoked_by=user)
        self.console.print("[green]✓[/] " + _("Revoked %(p)s.") % {"p": key.prefix})
