"""`kizuna loyalty expire|evaluate-tiers|birthday-coupons`: the monthly jobs, on demand."""

from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.translation import gettext as _

from kizuna.loyalty import services


def _date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise CommandError(_("Give a date as YYYY-MM-DD.")) from exc


class Command(BaseCommand):
    help = _("Run the loyalty programme's monthly jobs.")

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        expire = actions.add_parser("expire", help=_("Expire points whose date has passed."))
        expire.add_argument("--today", default="", help="YYYY-MM-DD")
        tiers = actions.add_parser("evaluate-tiers", help=_("Re-evaluate every member's tier."))
        tiers.add_argument("--today", default="", help="YYYY-MM-DD")
        birthday = actions.add_parser("birthday-coupons", help=_("Issue this month's coupons."))
        birthday.add_argument("--month", default="", help="YYYY-MM-01")

    def handle(self, *args: Any, **options: Any) -> None:
        action = options["action"]
        if action == "expire":
            today = _date(options["today"]) if options["today"] else None
            result = services.points_expire(today=today)
            self.stdout.write(
                _("%(p)d points expired on %(a)d accounts.")
                % {"p": result.points, "a": result.accounts}
            )
        elif action == "evaluate-tiers":
            today = _date(options["today"]) if options["today"] else None
            result = services.tiers_evaluate(today=today)
            self.stdout.write(_("%(n)d tier changes.") % {"n": result.entries})
        else:
            month = _date(options["month"]) if options["month"] else None
            issued = services.birthday_coupons_issue(month=month)
            self.stdout.write(_("%(n)d birthday coupons issued.") % {"n": issued})
