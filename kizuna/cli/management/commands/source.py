"""`kizuna source create|list|revoke`: tracking sources and their write keys."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from rich import box
from rich.console import Console
from rich.table import Table

from kizuna.tracking.models import Source
from kizuna.tracking.selectors import source_list
from kizuna.tracking.services import source_create, source_revoke


class Command(BaseCommand):
    help = _("Create, list and revoke event sources (write keys for the /v1 tracking API).")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser(
            "create", help=_("Create a source; its write key is shown once.")
        )
        create.add_argument("name")
        create.add_argument("--slug", default="")
        actions.add_parser("list", help=_("List sources (never their write keys)."))
        revoke = actions.add_parser("revoke", help=_("Revoke a source's write key by its slug."))
        revoke.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        self.console = Console(file=self.stdout._out)  # type: ignore[arg-type]
        getattr(self, f"_{options['action']}")(options)

    def _create(self, options: dict[str, Any]) -> None:
        try:
            issued = source_create(name=options["name"], slug=options["slug"])
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.console.print(
            "[yellow]"
            + _(
                "Source %(name)s (%(slug)s). Copy the write key below now: it is shown only "
                "once; kizuna keeps only its digest."
            )
            % {"name": issued.source.name, "slug": issued.source.slug}
        )
        self.stdout.write(issued.write_key)

    def _list(self, options: dict[str, Any]) -> None:
        table = Table(title=_("Sources"), box=box.SIMPLE_HEAD)
        for column in (_("Slug"), _("Name"), _("Key prefix"), _("Created"), _("Status")):
            table.add_column(column)
        for source in source_list():
            table.add_row(
                source.slug,
                source.name,
                source.write_key_prefix,
                f"{source.created_at:%Y-%m-%d}",
                _("active") if source.is_active else _("revoked"),
            )
        if not table.row_count:
            self.console.print(_("No sources yet."))
            return
        self.console.print(table)

    def _revoke(self, options: dict[str, Any]) -> None:
        source = Source.objects.filter(slug=options["slug"], revoked_at__isnull=True).first()
        if source is None:
            raise CommandError(_("No active source %(s)s.") % {"s": options["slug"]})
        source_revoke(source=source)
        self.console.print("[green]✓[/] " + _("Revoked %(s)s.") % {"s": source.slug})
