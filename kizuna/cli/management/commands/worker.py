"""`kizuna worker [--lane all|default|transactional|journey|bulk]`: Huey's consumer for the
main queue and/or the sending lanes (`kizuna.messaging.lanes`).

`all` (the default) runs the main queue with the usual options (`--workers` etc.) and every
sending lane, each with `KIZUNA_SEND_CONCURRENCY` threads, in this one process. A named
lane runs only that lane (start one such process per lane to give bulk its own CPU); keep
one `default` or `all` worker running somewhere for the periodic tasks.

The worker runs at CPU niceness `KIZUNA_WORKER_NICE` (default 10): where it shares the CPU
with the web server, requests (the Segment API's above all) are answered first and the
worker takes the CPU they leave; on an idle machine it makes no difference.
"""

from __future__ import annotations

import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _
from huey.consumer_options import ConsumerConfig
from huey.contrib.djhuey import HUEY
from huey.contrib.djhuey.management.commands import run_huey

from kizuna.cli.processes import lower_cpu_priority

CHOICES = ("all", "default", "transactional", "journey", "bulk")


class Command(run_huey.Command):
    help = _("Run the worker: the main queue and the sending lanes (transactional, journey, bulk).")

    def add_arguments(self, parser: Any) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--lane",
            choices=CHOICES,
            default="all",
            help=_("Which queue to consume (default: all of them in this process)."),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        lane = options.pop("lane")
        if lane not in CHOICES:
            raise CommandError(_("Choose a lane: %(c)s.") % {"c": ", ".join(CHOICES)})
        lower_cpu_priority(int(getattr(settings, "KIZUNA_WORKER_NICE", 0)))  # before any thread
        if lane == "default":
            with _consumers_stopped_on_exit(HUEY):
                return super().handle(*args, **options)
        from kizuna.messaging import lanes

        autodiscover_modules("tasks")
        lanes.register_all()
        logger = logging.getLogger("huey")
        threads = lanes.concurrency()
        if lane != "all":
            config = _lane_config(threads)
            config.validate()
            if not logger.handlers:
                config.setup_logger(logger)
            huey = lanes.huey_for(lane)
            with _consumers_stopped_on_exit(huey):
                huey.create_consumer(**config.values).run()
            return None
        hueys = [lanes.huey_for(name) for name in lanes.LANES]
        with _consumers_stopped_on_exit(*hueys, HUEY):
            for huey in hueys:
                _start_in_background(huey.create_consumer(**_lane_config(threads).values))
            return super().handle(*args, **options)  # the main queue, until stopped


def _lane_config(threads: int) -> ConsumerConfig:
    """A lane's consumer: no periodic tasks (the main queue's run them), and the main
    queue's idle poll interval (`max_delay`) so a password reset after a quiet spell is
    not kept waiting."""
    main = settings.HUEY.get("consumer", {})
    return ConsumerConfig(
        workers=threads,
        worker_type="thread",
        periodic=False,
        max_delay=float(main.get("max_delay", 1.0)),
    )


@contextmanager
def _consumers_stopped_on_exit(*hueys: Any) -> Iterator[list[Any]]:
    """Every consumer these Huey instances create meanwhile is stopped on the way out.

    `Consumer.start()` starts its worker threads (not daemons) before it installs its signal
    handlers: a Ctrl-C in between raises KeyboardInterrupt out of `run()` with those threads
    still running, and the process would never exit (CI hung on it)."""
    consumers: list[Any] = []
    hueys = tuple({id(huey): huey for huey in hueys}.values())
    for huey in hueys:

        def create(*args: Any, _create: Any = huey.create_consumer, **kwargs: Any) -> Any:
            consumers.append(_create(*args, **kwargs))
            return consumers[-1]

        huey.create_consumer = create
    try:
        yield consumers
    finally:
        for huey in hueys:
            del huey.create_consumer  # the class's method again
        for consumer in consumers:
            consumer.stop(graceful=True)


def _start_in_background(consumer: Any) -> None:
    """Start a lane's consumer without its signal handlers.

    `Consumer.start()` installs handlers that only flag that consumer, and only its own
    `run()` loop (never called for a background lane) acts on the flag: a Ctrl-C or SIGTERM
    arriving before the main queue's consumer installs its handlers would be swallowed and
    the worker would run on. The handlers in place before (Python's defaults) stay.
    """
    signals = [signal.SIGINT, signal.SIGTERM] + (
        [signal.SIGHUP] if hasattr(signal, "SIGHUP") else []
    )
    before = {signum: signal.getsignal(signum) for signum in signals}
    try:
        consumer.start()
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
