"""`kizuna serve`: the web server (gunicorn) with the configured settings."""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from kizuna.cli import processes


class Command(BaseCommand):
    help = _(
        "Run the web server (gunicorn, kizuna.wsgi). Uses DJANGO_SETTINGS_MODULE "
        "(kizuna.settings.production in deployments). Background work runs separately in "
        "`kizuna worker` (Huey; `kizuna worker --workers N` for more worker threads)."
    )
    requires_system_checks = []  # gunicorn's workers load and check the app themselves

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help=_("Address to listen on."))
        parser.add_argument("--port", type=int, default=8000, help=_("Port to listen on."))
        parser.add_argument(
            "--workers",
            type=int,
            default=2,
            help=_("Web worker processes (default 2; about 2 per core)."),
        )
        parser.add_argument(
            "--threads", type=int, default=4, help=_("Threads per worker process (default 4).")
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["workers"] < 1 or options["threads"] < 1:
            raise CommandError(_("--workers and --threads must be at least 1."))
        argv = processes.gunicorn_argv(
            host=options["host"],
            port=options["port"],
            workers=options["workers"],
            threads=options["threads"],
        )
        self.stdout.write(
            _("Serving kizuna on http://%(host)s:%(port)s/ (settings %(settings)s)")
            % {
                "host": options["host"],
                "port": options["port"],
                "settings": processes.child_env()["DJANGO_SETTINGS_MODULE"],
            }
        )
        self.stdout.flush()
        # gunicorn takes over this process: signals (Ctrl-C, TERM from systemd) reach it directly.
        os.execve(argv[0], argv, processes.child_env())  # noqa: S606
