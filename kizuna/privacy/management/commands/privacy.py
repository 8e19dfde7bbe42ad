"""`kizuna privacy retention [--dry-run]`: apply the retention policies and print the report."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from kizuna.privacy import retention


class Command(BaseCommand):
    help = _("Privacy housekeeping: apply the retention policies.")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        run = actions.add_parser("retention", help=_("Apply the retention policies."))
        run.add_argument(
            "--dry-run", action="store_true", help=_("Only count what would be removed.")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        result = retention.run(dry_run=options["dry_run"], trigger="command")
        out = {"dry_run": result.dry_run, **result.report}
        if result.errors:
            out["errors"] = result.errors
        self.stdout.write(json.dumps(out, indent=2))
        if result.errors:
            raise CommandError(_("Some retention policies failed: %s") % ", ".join(result.errors))
