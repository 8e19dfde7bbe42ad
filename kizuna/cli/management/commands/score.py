"""`kizuna score`: compute and store every customer's RFM, CLV and churn-risk scores now."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from kizuna.analytics import services
from kizuna.analytics.models import RunStatus, RunTrigger
from kizuna.analytics.scoring.population import MODELS, Parameters

STAGES = {
    "read": gettext_lazy("Reading purchases (SQL)"),
    "score": gettext_lazy("Fitting models and scoring"),
    "store": gettext_lazy("Storing scores"),
    "kpis": gettext_lazy("KPIs and cohorts"),
}


class Command(BaseCommand):
    help = _(
        "Score every customer now: RFM, probability alive, expected purchases, expected "
        "order value, lifetime value and churn risk, stored with the model version. The "
        "worker does this every night; this runs it in the foreground."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = services.default_parameters()
        parser.add_argument(
            "--model",
            choices=sorted(MODELS),
            default=defaults.model,
            help=_("Repeat-purchase model (default bgnbd)."),
        )
        parser.add_argument(
            "--horizon-months",
            type=int,
            default=defaults.horizon_months,
            help=_("CLV horizon in months."),
        )
        parser.add_argument(
            "--discount-rate",
            type=float,
            default=defaults.annual_discount_rate,
            help=_("Annual discount rate for CLV (0.1 = 10%%)."),
        )
        parser.add_argument(
            "--at-risk-threshold",
            type=float,
            default=defaults.at_risk_threshold,
            help=_("Churn risk (1 - P(alive)) from which a customer is at risk."),
        )
        parser.add_argument(
            "--as-of",
            default="",
            help=_("Score as of this ISO 8601 time with offset (default: now)."),
        )
        parser.add_argument("--json", action="store_true", help=_("Print the run as JSON."))

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=self.stdout._out, stderr=False)  # type: ignore[arg-type]
        parameters = Parameters(
            model=options["model"],
            horizon_months=options["horizon_months"],
            annual_discount_rate=options["discount_rate"],
            at_risk_threshold=options["at_risk_threshold"],
        )
        as_of = None
        if options["as_of"]:
            try:
                as_of = datetime.fromisoformat(options["as_of"])
            except ValueError as exc:
                raise CommandError(_("--as-of must be an ISO 8601 time.")) from exc
            if as_of.tzinfo is None:
                raise CommandError(_("--as-of needs a UTC offset, e.g. +09:00."))
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=options["json"]) as progress:
            tasks: dict[str, Any] = {}

            def advance(stage: str) -> None:
                for key, task in tasks.items():
                    if key != stage:
                        progress.update(task, completed=1, total=1)
                tasks[stage] = progress.add_task(str(STAGES.get(stage, stage)), total=None)

            try:
                run = services.scoring_run_now(
                    trigger=RunTrigger.CLI, parameters=parameters, as_of=as_of, progress=advance
                )
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
                ) from exc
            for task in tasks.values():
                progress.update(task, completed=1, total=1)
        if options["json"]:
            self.stdout.write(json.dumps(_as_json(run), indent=2, ensure_ascii=False))
        else:
            console.print(_table(run))
        if run.status == RunStatus.FAILED:
            raise CommandError(run.message)


def _as_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.pk,
        "status": run.status,
        "model_version": run.model_version,
        "as_of": run.as_of.isoformat() if run.as_of else None,
        "customers_scored": run.customers_scored,
        "newly_at_risk": run.newly_at_risk,
        "message": run.message,
        "fit": run.fit,
        "summary": run.summary,
        "timings": run.timings,
    }


def _table(run: Any) -> Table:
    table = Table(title=_("Scoring run #%(id)s") % {"id": run.pk}, show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row(_("Status"), run.get_status_display())
    if run.message:
        table.add_row(_("Message"), run.message)
    table.add_row(_("Model version"), run.model_version)
    table.add_row(_("Customers scored"), f"{run.customers_scored:,}")
    table.add_row(_("Newly at risk"), f"{run.newly_at_risk:,}")
    for key in ("repeat", "spend"):
        fit = run.fit.get(key)
        if fit:
            params = ", ".join(f"{k}={v:.4g}" for k, v in fit["params"].items())
            state = _("converged") if fit["converged"] else _("did not converge")
            table.add_row(fit["model"], f"{params} ({state}, LL {fit['log_likelihood']:.2f})")
    summary = run.summary or {}
    if "total_clv" in summary:
        table.add_row(_("Total CLV"), f"{summary['total_clv']:,.0f}")
        table.add_row(_("At risk"), f"{summary['at_risk']:,}")
    seconds = (run.timings or {}).get("seconds", {})
    if seconds:
        table.add_row(_("Seconds"), ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    return table
