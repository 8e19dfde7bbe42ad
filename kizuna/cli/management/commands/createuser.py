"""`kizuna createuser USERNAME --role ROLE`: a staff login with one of kizuna's roles."""

from __future__ import annotations

import getpass
import sys
from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from rich.console import Console

from kizuna.iam.roles import Role
from kizuna.iam.services import staff_user_create


def _messages(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)


class Command(BaseCommand):
    help = _("Create a staff user with a role (admin, marketer, analyst or support).")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        # Checked in handle() so an unknown role gets kizuna's own clear message.
        parser.add_argument("--role", required=True, help=", ".join(Role.values))
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--superuser",
            action="store_true",
            help=_("Also give every Django permission (for /admin/)."),
        )
        parser.add_argument(
            "--password-stdin",
            action="store_true",
            help=_("Read the password from standard input instead of asking."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username, role = options["username"], options["role"]
        if role not in Role.values:
            raise CommandError(
                _("Unknown role %(role)s; choose one of %(roles)s.")
                % {"role": role, "roles": ", ".join(Role.values)}
            )
        if get_user_model().objects.filter(username=username).exists():
            raise CommandError(
                _("A staff user named %(name)s already exists.") % {"name": username}
            )
        password = self._password(options["password_stdin"])
        candidate = get_user_model()(username=username, email=options["email"])
        try:
            password_validation.validate_password(password, user=candidate)
            user = staff_user_create(
                username=username,
                password=password,
                role=role,
                email=options["email"],
                superuser=options["superuser"],
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from exc
        console = Console(file=self.stdout._out)  # type: ignore[arg-type]
        console.print(
            "[green]✓[/] "
            + _("Created %(name)s with the role %(role)s.") % {"name": user.username, "role": role}
        )

    def _password(self, from_stdin: bool) -> str:
        if from_stdin:
            password = sys.stdin.readline().rstrip("\r\n")
        else:
            password = getpass.getpass(_("Password: "))
            if getpass.getpass(_("Password (again): ")) != password:
                raise CommandError(_("The two passwords differ."))
        if not password:
            raise CommandError(_("The password is empty."))
        return password
