"""Database expressions of our own (Django has no portable one for these)."""

from __future__ import annotations

from typing import Any

from django.db import models


class UTCDate(models.Func):
    """The UTC calendar day of a datetime column, as an expression the database can store
    in a generated column (deterministic, unlike `TruncDate`, whose SQL depends on the
    session's time zone, and on SQLite calls a function of Django's)."""

    arity = 1
    output_field = models.DateField()

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        return self.as_sql(
            compiler, connection, template="((%(expressions)s AT TIME ZONE 'UTC')::date)", **extra
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        # Django stores aware datetimes on SQLite as UTC text, 'YYYY-MM-DD HH:MM:SS[.f]';
        # date() of it is deterministic. (Not substr(x, 1, 10): Django's SQLite
        # introspection splits the table's DDL at ", " and fails on the column.)
        return self.as_sql(compiler, connection, template="date(%(expressions)s)", **extra)
