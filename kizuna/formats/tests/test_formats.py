from __future__ import annotations

from datetime import UTC, date, datetime

from django.template import Context, Template
from django.utils import translation
from django.utils.formats import date_format

from kizuna.core.money import format_money


def test_japanese_dates_read_2026_11_22() -> None:
    day = date(2026, 11, 22)
    with translation.override("ja"):
        assert date_format(day) == "2026年11月22日"
        assert date_format(day, "YEAR_MONTH_FORMAT") == "2026年11月"
        assert date_format(day, "SHORT_DATE_FORMAT") == "2026/11/22"
        moment = datetime(2026, 11, 22, 1, 30, tzinfo=UTC)  # 10:30 JST
        rendered = Template("{{ m|date }}|{{ m|date:'DATETIME_FORMAT' }}").render(
            Context({"m": moment})
        )
        assert rendered == "2026年11月22日|2026年11月22日 10:30"
    with translation.override("en"):
        assert "年" not in date_format(day)


def test_yen_have_no_decimals() -> None:
    assert format_money(1234567, "JPY") == "¥1,234,567"
    assert format_money(-500, "JPY") == "-¥500"
    assert format_money(1234, "USD") == "$12.34"
