"""`kizuna export customers [--segment ID] [--search TEXT] [--out FILE]` (CSV) and
`kizuna export customer ID` (JSON)."""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from kizuna.core.errors import NotFound
from kizuna.customers.selectors import customer_get, customer_list
from kizuna.dataio.exporters import customer_csv_lines, customer_data_export, in_segment


class _Stdout:
    def __init__(self, wrapper: Any) -> None:
        self.wrapper = wrapper

    def write(self, text: str) -> None:
        self.wrapper.write(text, ending="")


class Command(BaseCommand):
    help = _("Export the customer list as CSV, or one customer's data as JSON.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("what", choices=["customers", "customer"])
        parser.add_argument("customer_id", nargs="?", type=int)
        parser.add_argument("--search", default="", help=_("Only customers matching this."))
        parser.add_argument(
            "--segment", type=int, default=None, help=_("Only this segment's current members.")
        )
        parser.add_argument("--out", default="-", help=_("File to write (default: stdout)."))

    def handle(self, *args: Any, **options: Any) -> None:
        customers = None
        if options["what"] == "customers":
            try:  # before the output file is created: an unknown segment writes nothing
                customers = in_segment(customer_list(search=options["search"]), options["segment"])
            except NotFound as exc:
                raise CommandError(str(exc)) from exc
        out: Any = (
            _Stdout(self.stdout)
            if options["out"] == "-"
            else open(options["out"], "w", encoding="utf-8", newline="")  # noqa: SIM115
        )
        try:
            if customers is not None:
                for line in customer_csv_lines(customers, bom=options["out"] != "-"):
                    out.write(line)
                return
            if options["customer_id"] is None:
                raise CommandError(_("Give the customer id."))
            try:
                customer = customer_get(customer_id=options["customer_id"])
            except NotFound as exc:
                raise CommandError(str(exc)) from exc
            json.dump(customer_data_export(customer), out, ensure_ascii=False, indent=2)
            out.write("\n")
        finally:
            if not isinstance(out, _Stdout):
                out.close()
