"""`kizuna import customers|orders|products FILE`: CSV or JSON Lines, with a progress bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from kizuna.core.memory import settle_loaded_objects
from kizuna.dataio.importers import run_import
from kizuna.dataio.mapping import parse_mapping

MAX_SHOWN_ERRORS = 50


class Command(BaseCommand):
    help = _("Import customers, orders or products from a CSV or JSON Lines file.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["customers", "orders", "products"])
        parser.add_argument("file")
        parser.add_argument(
            "--dry-run", action="store_true", help=_("Check and preview; write nothing.")
        )
        parser.add_argument(
            "--skip-bad-rows",
            action="store_true",
            help=_("Write the good rows and report the bad ones (default: all or nothing)."),
        )
        parser.add_argument(
            "--mapping",
            default="",
            help=_('Column mapping, e.g. "Kundennr=external_id,Mail=email".'),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=self.stdout._out)  # type: ignore[arg-type]
        path = Path(options["file"])
        if not path.is_file():
            raise CommandError(_("No such file: %(p)s") % {"p": path})
        # A file's rows are read and written in batches of thousands of objects each.
        settle_loaded_objects()
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(_("Importing %(kind)s") % {"kind": options["kind"]}, total=None)
            report = run_import(
                options["kind"],
                path,
                mapping=parse_mapping(options["mapping"]),
                dry_run=options["dry_run"],
                skip_bad_rows=options["skip_bad_rows"],
                progress=lambda n: bar.advance(task, n),
            )
        console.print(
            _("Encoding %(enc)s; columns mapped: %(map)s")
            % {
                "enc": report.encoding or "?",
                "map": ", ".join(f"{k}→{v}" for k, v in report.mapping.items()) or "—",
            }
        )
        if report.unmapped:
            console.print(_("Ignored columns: %(c)s") % {"c": ", ".join(report.unmapped)})
        for error in report.errors[:MAX_SHOWN_ERRORS]:
            where = _("row %(n)d") % {"n": error.row} if error.row else _("file")
            console.print(f"[red]✗[/] {where} {error.field}: {error.message}", markup=True)
        if len(report.errors) > MAX_SHOWN_ERRORS:
            console.print(
                _("… and %(n)d more errors.") % {"n": len(report.errors) - MAX_SHOWN_ERRORS}
            )
        summary = _(
            "%(rows)d rows: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
            "%(skipped)d skipped."
        ) % {
            "rows": report.rows,
            "created": report.created,
            "updated": report.updated,
            "unchanged": report.unchanged,
            "skipped": report.skipped,
        }
        if options["dry_run"]:
            console.print(_("Dry run (nothing written): ") + summary)
        elif report.errors and not options["skip_bad_rows"]:
            raise CommandError(
                _(
                    "Nothing was imported: %(n)d errors "
                    "(use --skip-bad-rows to import the good rows)."
                )
                % {"n": len(report.errors)}
            )
        else:
            console.print("[green]✓[/] " + summary)
