"""`kizuna demo`: a running kizuna with a demo business in one command."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connections
from django.utils.translation import gettext as _
from rich.console import Console
from rich.panel import Panel
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from kizuna.cli import processes
from kizuna.core.memory import settle_loaded_objects
from kizuna.core.timeutil import now
from kizuna.demo import business, load
from kizuna.demo.generate import generate


class Command(BaseCommand):
    help = _(
        "Start kizuna with a demo business (Kizuna Coffee, 絆珈琲): creates the data "
        "directory, migrates, loads about 20,000 customers and 200,000 orders, creates the "
        "demo logins, then runs the web server and the worker until Ctrl-C."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--customers",
            type=int,
            default=20_000,
            help=_("Number of demo customers (default 20000)."),
        )
        parser.add_argument(
            "--seed",
            type=int,
            default=42,
            help=_("Random seed: the same seed gives the same business."),
        )
        parser.add_argument("--host", default="127.0.0.1", help=_("Address to listen on."))
        parser.add_argument("--port", type=int, default=8000, help=_("Port to listen on."))
        parser.add_argument(
            "--no-serve", action="store_true", help=_("Prepare the data and logins, then exit.")
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help=_("Wipe the database and load the demo business again."),
        )
        parser.add_argument("--timings-json", default="", help=_("Write stage timings here."))

    def handle(self, *args: Any, **options: Any) -> None:
        console = Console(file=self.stdout._out)  # type: ignore[arg-type]
        if options["customers"] < 1:
            raise CommandError(_("--customers must be at least 1."))
        started = time.perf_counter()
        timings: dict[str, float] = {}
        data_dir = Path(settings.DATA_DIR)
        data_dir.mkdir(parents=True, exist_ok=True)
        if options["reset"]:
            self._wipe_sqlite(console)

        mark = time.perf_counter()
        with console.status(_("Preparing the database…")):
            call_command("migrate", interactive=False, verbosity=0)
            if options["reset"] and not self._is_sqlite():
                call_command("flush", interactive=False, verbosity=0)
        timings["migrate"] = time.perf_counter() - mark
        console.print("[green]✓[/] " + _("Database ready (%(db)s).") % {"db": self._db_label()})

        if load.is_loaded():
            console.print(
                "[green]✓[/] "
                + _("The demo business is already loaded (use --reset to load it again).")
            )
        else:
            if load.has_other_data():
                raise CommandError(
                    _(
                        "This database already holds customers that are not the demo business; "
                        "refusing to mix them. Use another KIZUNA_DATA_DIR, or --reset to wipe it."
                    )
                )
            # Hundreds of thousands of rows are built in batches of thousands of objects.
            settle_loaded_objects()
            timings.update(self._load(console, options["customers"], options["seed"]))

        password = load.demo_password(data_dir)
        logins = load.staff_ensure(password=password)
        timings["total"] = time.perf_counter() - started
        if options["timings_json"]:
            Path(options["timings_json"]).write_text(json.dumps(timings, indent=2))
        console.print("[green]✓[/] " + _("Ready in %(s).1f s.") % {"s": timings["total"]})

        host, port = options["host"], options["port"]
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}/"  # noqa: S104
        if options["no_serve"]:
            console.print(self._panel(url, logins, password, data_dir, serving=False))
            return
        connections.close_all()
        env = processes.child_env()
        children: dict[str, subprocess.Popen] = {}
        children["web server"] = subprocess.Popen(  # noqa: S603
            processes.gunicorn_argv(host=host, port=port, workers=2, threads=4), env=env
        )
        children["worker"] = subprocess.Popen(processes.worker_argv(), env=env)  # noqa: S603
        if not processes.wait_for_port(host, port, children["web server"]):
            processes.stop(children)
            raise CommandError(
                _("The web server did not start on %(host)s:%(port)s (is the port in use?).")
                % {"host": host, "port": port}
            )
        console.print(self._panel(url, logins, password, data_dir, serving=True))
        code = processes.supervise(children, console)
        if code:
            raise CommandError(_("A child process failed."), returncode=code)

    # --- steps ----------------------------------------------------------------------------

    def _is_sqlite(self) -> bool:
        return bool(settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"))

    def _db_label(self) -> str:
        db = settings.DATABASES["default"]
        if self._is_sqlite():
            return f"SQLite {db['NAME']}"
        return f"PostgreSQL {db.get('HOST') or 'localhost'}/{db['NAME']}"

    def _wipe_sqlite(self, console: Console) -> None:
        if not self._is_sqlite():
            return  # other databases are flushed after migrate
        connections.close_all()
        # The tracking inbox's own file too: its pending batches name the old sources.
        for alias in ("default", "inbox"):
            db = settings.DATABASES.get(alias)
            if db is None or "sqlite" not in db["ENGINE"]:
                continue
            name = Path(db["NAME"])
            for path in (name, *(Path(f"{name}-{end}") for end in ("wal", "shm", "journal"))):
                path.unlink(missing_ok=True)
            console.print(
                "[yellow]✓[/] " + _("Removed the old database %(path)s.") % {"path": name}
            )

    def _load(self, console: Console, customers: int, seed: int) -> dict[str, float]:
        timings: dict[str, float] = {}
        columns = (
            SpinnerColumn(), TextColumn("{task.description:<28}"), BarColumn(),
            MofNCompleteColumn(), TimeElapsedColumn(),
        )  # fmt: skip
        with Progress(*columns, console=console) as progress:
            gen_tasks = {
                "customers": progress.add_task(_("Inventing customers"), total=customers),
                "purchases": progress.add_task(_("Simulating purchases"), total=customers),
            }
            mark = time.perf_counter()
            data = generate(
                customers=customers, seed=seed, until=now(),
                progress=lambda step, n: progress.advance(gen_tasks[step], n),
            )  # fmt: skip
            timings["generate"] = time.perf_counter() - mark
            labels = {
                "catalog": _("Menu and categories"),
                "customers": _("Customers"),
                "identities": _("LINE identities"),
                "consents": _("Consents"),
                "orders": _("Orders"),
                "refunds": _("Refunds"),
                "events": _("Web and app events"),
            }
            sizes = load.step_sizes(data)
            tasks = {
                step: progress.add_task(label, total=sizes[step]) for step, label in labels.items()
            }
            mark = time.perf_counter()
            result = load.load(data, advance=lambda step, n: progress.advance(tasks[step], n))
            timings["insert"] = time.perf_counter() - mark
        timings.update({f"insert.{k}": v for k, v in result.seconds.items()})
        console.print(
            "[green]✓[/] "
            + _("Loaded %(business)s: %(c)s customers, %(o)s orders, %(r)s refunds.")
            % {
                "business": f"{business.BUSINESS_NAME} ({business.BUSINESS_NAME_JA})",
                "c": f"{len(data.customers):,}",
                "o": f"{len(data.orders):,}",
                "r": f"{len(data.refunds):,}",
            }
        )
        return timings

    def _panel(
        self,
        url: str,
        logins: list[load.DemoLogin],
        password: str,
        data_dir: Path,
        *,
        serving: bool,
    ) -> Panel:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        table.add_row(_("Console"), url)
        table.add_row(_("Admin"), url + "admin/")
        table.add_row(_("Username"), logins[0].username)
        table.add_row(_("Password"), password)
        others = ", ".join(f"{login.username} ({login.role})" for login in logins[1:])
        table.add_row(_("Other logins"), others + " — " + _("same password"))
        table.add_row(_("Saved in"), str(data_dir / load.LOGIN_FILE))
        if serving:
            table.add_row(_("Stop"), _("Press Ctrl-C to stop the web server and the worker."))
        else:
            table.add_row(_("Start"), "kizuna demo  " + _("(or: kizuna serve & kizuna worker)"))
        return Panel(
            table, title=f"{business.BUSINESS_NAME} · {business.BUSINESS_NAME_JA}", expand=False
        )
