"""`kizuna recommendations train`: train every recommendation model now (or queue it for
the worker with --queue), evaluate it on the holdout and make the new versions active."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from rich.console import Console
from rich.table import Table

from kizuna.recommendations import services
from kizuna.recommendations.models import RunStatus, RunTrigger


class Command(BaseCommand):
    help = _(
        "Recommendations: `train` trains ALS, BPR, co-purchase and popularity from orders "
        "and product views, evaluates them on a time-based holdout and activates the new "
        "versions. The worker does this every night."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["train"], help=_("What to do."))
        parser.add_argument(
            "--queue", action="store_true", help=_("Queue the run for the worker instead.")
        )
        parser.add_argument(
            "--no-evaluate", action="store_true", help=_("Skip the holdout evaluation.")
        )
        parser.add_argument("--json", action="store_true", help=_("Print the run as JSON."))

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=self.stdout._out, stderr=False)  # type: ignore[arg-type]
        try:
            if options["queue"]:
                run = services.training_run_request(trigger=RunTrigger.CLI)
                console.print(_("Training run #%(id)s queued.") % {"id": run.pk})
                return
            with console.status(_("Training…")) as status:
                run = services.training_run_now(
                    trigger=RunTrigger.CLI,
                    evaluate=not options["no_evaluate"],
                    progress=lambda stage, percent: status.update(f"{stage} ({percent}%)"),
                )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        if options["json"]:
            out = {
                "id": run.pk,
                "status": run.status,
                "evaluation": run.evaluation,
                "data": run.data,
                "timings": run.timings,
                "message": run.message,
            }
            self.stdout.write(json.dumps(out, indent=2, default=str))
        else:
            console.print(
                _("Training run #%(id)s: %(status)s in %(seconds).1f s")
                % {"id": run.pk, "status": run.get_status_display(), "seconds": run.seconds or 0}
            )
            kinds = (run.evaluation or {}).get("kinds", {})
            if kinds:
                k = run.evaluation["k"]
                table = Table(title=_("Holdout evaluation"))
                for column in ("model", f"MAP@{k}", f"precision@{k}", f"recall@{k}", "coverage"):
                    table.add_column(column)
                for kind, m in kinds.items():
                    table.add_row(
                        kind,
                        f"{m['map']:.4f}",
                        f"{m['precision']:.4f}",
                        f"{m['recall']:.4f}",
                        f"{m['coverage']:.3f}",
                    )
                console.print(table)
        if run.status != RunStatus.SUCCEEDED:
            raise CommandError(run.message or run.status)
