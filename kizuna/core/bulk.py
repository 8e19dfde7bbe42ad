"""Fast bulk insertion for importers: batching, id allocation and a raw INSERT that adapts
values exactly as the ORM would. Apps' `bulk.py` modules validate rows, then call these."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from functools import partial
from itertools import islice
from typing import Any

import orjson
from django.db import connections, router
from django.db.models import Max, Model

BATCH_SIZE = 5000
Progress = Callable[[int], None]


def batched(rows: Iterable[Any], size: int) -> Iterator[list[Any]]:
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def allocate_ids(model: type[Model], count: int) -> list[int]:
    """Reserve `count` primary keys for rows inserted with explicit ids.

    PostgreSQL draws them from the table's sequence (safe beside concurrent writers);
    SQLite continues after the largest id, which is safe because its write transactions
    are serialised (the settings open them IMMEDIATE).
    """
    if count <= 0:
        return []
    connection = connections[router.db_for_write(model)]
    table = model._meta.db_table
    if connection.vendor == "postgresql":
        # The sequence looked up once (MATERIALIZED: not pulled up into the series, where
        # it was looked up and cast again for every id, 4 us each, against 0.5 for
        # nextval), the ids as one array rather than a row each.
        with connection.cursor() as cursor:
            cursor.execute(
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence(%s, 'id')::regclass AS seq) "
                "SELECT array_agg(nextval(s.seq)) FROM s, generate_series(1, %s)",
                [table, count],
            )
            return sorted(cursor.fetchone()[0])  # drawn in order (sorted: nearly free)
    start = (model._default_manager.aggregate(top=Max("pk"))["top"] or 0) + 1
    return list(range(start, start + count))


def _adapt_json(ops: Any, encoder: Any, value: Any) -> Any:
    return ops.adapt_json_value(value, encoder)


_ORJSON_STRICT = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _orjson_text(value: Any) -> str:
    return orjson.dumps(value, option=_ORJSON_STRICT).decode()


def json_adapter(connection: Any, encoder: Any) -> Callable[[Any], Any]:
    """The backend's JSON adaptation, serialised by orjson (several times faster than the
    standard library) for plain JSON values; anything orjson will not take as plain JSON
    (datetimes, integers past 64 bits, custom types) goes through Django's own adaptation."""
    ops = connection.ops
    if encoder is not None:
        return partial(_adapt_json, ops, encoder)
    wrap: Callable[[Any], Any] | None = None
    if connection.vendor == "postgresql":
        from psycopg.types.json import Jsonb

        def wrap(value: Any) -> Any:
            text = _orjson_text(value)  # raises for what it cannot take, before psycopg dumps
            return Jsonb(value, dumps=lambda _value: text)

    elif connection.vendor != "sqlite":
        return partial(_adapt_json, ops, encoder)

    def fast(value: Any) -> Any:
        try:
            return _orjson_text(value) if wrap is None else wrap(value)
        except (orjson.JSONEncodeError, TypeError):
            return ops.adapt_json_value(value, encoder)

    return fast


def datetime_adapter(connection: Any) -> Callable[[Any], Any]:
    """The backend's datetime adaptation; on SQLite a faster equivalent for aware values
    (Django's: make naive in the connection's zone, then str(), i.e. isoformat(" "))."""
    adapt = connection.ops.adapt_datetimefield_value
    if connection.vendor != "sqlite":
        return adapt
    zone = connection.timezone
    memo: dict[datetime, str] = {}  # rows often repeat a time (occurred/received, placed/created)

    def fast(value: Any) -> Any:
        if isinstance(value, datetime) and value.tzinfo is not None:
            text = memo.get(value)
            if text is None:
                if len(memo) > 100_000:
                    memo.clear()
                text = memo[value] = value.astimezone(zone).replace(tzinfo=None).isoformat(" ")
            return text
        return adapt(value)

    return fast


def table_insert(
    model: type[Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    batch_size: int = BATCH_SIZE,
    progress: Progress | None = None,
    ignore_conflicts: bool = False,
) -> int:
    """INSERT already-validated rows (tuples in the order of `fields`) in batches.

    Values are adapted by the database backend exactly as the ORM would adapt them
    (aware datetimes, dates, JSON), so the stored rows equal ORM-created ones. This
    skips model instantiation, which is what makes loading a million rows take seconds.
    With `ignore_conflicts`, rows that would violate a unique constraint are skipped
    (`ON CONFLICT DO NOTHING`, on SQLite and PostgreSQL alike).
    """
    connection = connections[router.db_for_write(model)]
    ops = connection.ops
    meta = model._meta
    columns: list[Any] = [meta.get_field(name) for name in fields]
    adapters: list[Callable[[Any], Any] | None] = []
    adapt_datetime = datetime_adapter(connection)
    for column in columns:
        kind = column.get_internal_type()
        if kind == "DateTimeField":
            adapters.append(adapt_datetime)
        elif kind == "DateField":
            adapters.append(ops.adapt_datefield_value)
        elif kind == "JSONField":
            adapters.append(json_adapter(connection, column.encoder))
        else:
            adapters.append(None)
    quote = ops.quote_name
    sql = "INSERT INTO {} ({}) VALUES ({})".format(  # noqa: S608 (quoted names only)
        quote(meta.db_table),
        ", ".join(quote(column.column) for column in columns),
        ", ".join(["%s"] * len(columns)),
    )
    if ignore_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    written = 0
    with connection.cursor() as cursor:
        for chunk in batched(rows, batch_size):
            params = [
                [
                    value if adapt is None else adapt(value)
                    for adapt, value in zip(adapters, row, strict=True)
                ]
                for row in chunk
            ]
            cursor.executemany(sql, params)
            written += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return written


def _copy_json(encoder: Any) -> Callable[[Any], str]:
    """JSON text for a COPY row (orjson; the standard library with the field's encoder for
    what orjson will not take as plain JSON, as the ORM would serialise it)."""
    import json

    def text(value: Any) -> str:
        try:
            return _orjson_text(value)
        except (orjson.JSONEncodeError, TypeError):
            return json.dumps(value, cls=encoder)

    return text


def table_copy(
    model: type[Model],
    fields: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    ignore_conflicts: bool = False,
    json_text: bool = False,
) -> int:
    """`table_insert` through PostgreSQL's COPY, several times faster than executemany.

    Without `ignore_conflicts` the rows are copied straight into the table (a violated
    constraint fails the whole COPY). With it they are copied into a temporary table of the
    same columns, then `INSERT ... SELECT ... ON CONFLICT DO NOTHING` moves them over, so
    rows violating a unique constraint are skipped as with `table_insert`. Returns the rows
    written (with `ignore_conflicts`: the rows actually inserted). `json_text`: the values
    of JSON fields are JSON text already (written as they are). Other databases:
    `table_insert` (which then returns the rows given; not with `json_text`).
    """
    connection = connections[router.db_for_write(model)]
    if connection.vendor != "postgresql":
        if json_text:
            raise ValueError("json_text is for COPY (PostgreSQL) only")
        return table_insert(model, fields, rows, ignore_conflicts=ignore_conflicts)
    quote = connection.ops.quote_name
    meta = model._meta
    columns: list[Any] = [meta.get_field(name) for name in fields]
    names = ", ".join(quote(column.column) for column in columns)
    json_at = [
        (i, _copy_json(column.encoder))
        for i, column in enumerate(columns)
        if column.get_internal_type() == "JSONField" and not json_text
    ]
    table = quote(meta.db_table)
    stage = quote(f"_copy_{meta.db_table}"[:63])
    written = 0
    with connection.cursor() as cursor:
        target = table
        if ignore_conflicts:
            # Session-local; emptied before each use (a previous call may have failed).
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} AS "  # noqa: S608 (quoted names)
                f"SELECT {names} FROM {table} WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {stage}")
            target = stage
        copying = cursor.cursor.copy(f"COPY {target} ({names}) FROM STDIN")
        with connection.wrap_database_errors, copying as copy:  # Django's IntegrityError
            for row in rows:
                if json_at:
                    row = list(row)
                    for i, text in json_at:
                        if row[i] is not None:
                            row[i] = text(row[i])
                copy.write_row(row)
                written += 1
        if ignore_conflicts:
            cursor.execute(
                f"INSERT INTO {table} ({names}) SELECT {names} FROM {stage} "  # noqa: S608
                "ON CONFLICT DO NOTHING"
            )
            written = cursor.rowcount
            cursor.execute(f"TRUNCATE {stage}")
    return written
