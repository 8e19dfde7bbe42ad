"""The `kizuna` command: Django's management commands plus kizuna's own.

`kizuna worker` is Huey's `run_huey` with sending lanes (cli/management/commands/worker.py);
everything else is a management command (`demo`, `serve`, `apikey`, `createuser`,
`migrate`, ...).
"""

from __future__ import annotations

import os
import sys

ALIASES: dict[str, str] = {"rotate-keys": "rotate_keys"}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")
    if len(args) > 1 and args[1] in ALIASES:
        args[1] = ALIASES[args[1]]
    args[0] = "kizuna"
    from django.core.management import execute_from_command_line

    execute_from_command_line(args)


if __name__ == "__main__":
    main()
