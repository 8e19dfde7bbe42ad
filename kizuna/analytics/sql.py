"""The SQL of customer insight: purchase summaries aggregated in the database (PostgreSQL or
SQLite) and read into NumPy, and scores written back in bulk (binary COPY on PostgreSQL).

A *purchase* is an order in the scoring currency that is not cancelled, not fully refunded
and placed before the as-of instant; its value is the total less refunds. Orders of one
customer on one local day are one purchase day (see docs/analytics.md).

The per-customer summary is one query sorted by customer (COUNT(DISTINCT day), and a window
for the first day's value); the repeat purchases per day, for the tracking plot, another.
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper

from kizuna.analytics.models import CustomerScore
from kizuna.analytics.scoring import rfm
from kizuna.analytics.scoring.population import Purchases, Scores
from kizuna.commerce.models import Order
from kizuna.customers.selectors import basis_decisions


def connection() -> BaseDatabaseWrapper:
    return connections[router.db_for_read(Order)]


def _fixed_offset_minutes(zone: ZoneInfo) -> int | None:
    """The zone's UTC offset in minutes if it has had one offset since 1970 (Asia/Tokyo)."""
    offsets = {
        zone.utcoffset(datetime(year, month, 1, 12))
        for year in range(1970, 2045)
        for month in (1, 7)
    }
    if len(offsets) != 1:
        return None
    offset = offsets.pop()
    return None if offset is None else int(offset.total_seconds() // 60)


class Dialect:
    def __init__(self, conn: BaseDatabaseWrapper, zone: ZoneInfo) -> None:
        self.vendor = conn.vendor
        self.zone = zone
        self.offset = _fixed_offset_minutes(zone)

    def local_day(self, column: str) -> tuple[str, list[Any]]:
        """Days since 1970-01-01 of the column's date in the business's time zone."""
        if self.vendor == "postgresql":
            if self.offset is not None:  # cheaper than a time-zone conversion per row
                seconds = self.offset * 60
                return (
                    f"CAST(floor((date_part('epoch', {column}) + {seconds}) / 86400) AS bigint)",
                    [],
                )
            return f"(({column} AT TIME ZONE %s)::date - DATE '1970-01-01')", [self.zone.key]
        if self.offset is not None:
            return (
                f"CAST(julianday({column}, '{self.offset:+d} minutes') - 2440587.5 AS INTEGER)",
                [],
            )
        # Zones with daylight saving: Django's own per-row conversion on SQLite.
        return (
            f"CAST(julianday(django_datetime_cast_date({column}, %s, 'UTC')) - 2440587.5 "
            "AS INTEGER)",
            [self.zone.key],
        )

    def day_to_date(self, expression: str) -> str:
        if self.vendor == "postgresql":
            return f"(DATE '1970-01-01' + ({expression})::integer)"
        return f"date(({expression}) * 86400, 'unixepoch')"


def purchases_filter(as_of: datetime, currency: str) -> tuple[str, list[Any]]:
    # Adapted as the ORM adapts it (on SQLite: naive UTC text, as the column is stored),
    # so an as-of time in any zone compares right.
    instant = connection().ops.adapt_datetimefield_value(as_of)
    return (
        "o.currency = %s AND o.status <> 'cancelled' AND o.placed_at < %s "
        "AND (o.refunded_minor < o.total_minor OR o.total_minor = 0)",
        [currency, instant],
    )


def _orders_sql(dialect: Dialect, as_of: datetime, currency: str) -> tuple[str, list[Any]]:
    """Purchases as (cid, d, v): customer, local day, net value; one row per order."""
    day, day_params = dialect.local_day("o.placed_at")
    where, where_params = purchases_filter(as_of, currency)
    table = Order._meta.db_table
    sql = (
        f"SELECT o.customer_id AS cid, {day} AS d, "  # noqa: S608 (no user input)
        f"o.total_minor - o.refunded_minor AS v FROM {table} o WHERE {where}"
    )
    return sql, [*day_params, *where_params]


def _fetch_int64(sql: str, params: list[Any], columns: int) -> np.ndarray:
    """Rows of `columns` non-null integers as an (n, columns) int64 array."""
    conn = connection()
    conn.ensure_connection()
    if conn.vendor == "postgresql":
        return _copy_out_int64(conn, sql, params, columns)
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return np.array(rows, dtype=np.int64).reshape(-1, columns)


# Customers behind the tracking plot at most (a systematic sample on larger bases).
TRACKING_SAMPLE = 100_000
# Memory per hash aggregation of the summary queries (PostgreSQL's default of 4 MB would
# spill the per-(customer, day) groups of millions of orders to disk).
WORK_MEM = "256MB"


def _copy_out_int64(
    conn: BaseDatabaseWrapper, sql: str, params: list[Any], columns: int
) -> np.ndarray:
    """PostgreSQL's binary COPY of bigint columns, parsed by NumPy as fixed-size records."""
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        cursor.execute(f"SET LOCAL work_mem = '{WORK_MEM}'")
        query = cursor.cursor.mogrify(sql, params)
        buffer = bytearray()
        with cursor.cursor.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
            for chunk in copy:
                buffer += chunk
    header = 11 + 4 + 4
    extension = struct.unpack(">i", bytes(buffer[15:19]))[0]
    body = memoryview(buffer)[header + extension : len(buffer) - 2]  # trailer: int16 -1
    record = np.dtype(
        [("fields", ">i2")]
        + [item for i in range(columns) for item in ((f"l{i}", ">i4"), (f"v{i}", ">i8"))]
    )
    rows = np.frombuffer(body, dtype=record)
    out = np.empty((len(rows), columns), dtype=np.int64)
    for i in range(columns):
        out[:, i] = rows[f"v{i}"]
    return out


def read_purchases(*, as_of: datetime, currency: str, zone: ZoneInfo) -> Purchases:
    """Each customer's purchase summary as of `as_of`, and repeat purchases per day."""
    conn = connection()
    dialect = Dialect(conn, zone)
    orders_sql, params = _orders_sql(dialect, as_of, currency)
    # Grouped by customer with COUNT(DISTINCT day): PostgreSQL sorts once by customer and
    # streams (3x faster on 10M orders than hashing every (customer, day) first). The first
    # day's value (for the repeat-purchase mean) comes from a window over the same sort.
    per_customer = _fetch_int64(
        "SELECT cid, CAST(COUNT(DISTINCT d) AS BIGINT), CAST(COUNT(*) AS BIGINT), "  # noqa: S608
        "CAST(MIN(d) AS BIGINT), CAST(MAX(d) AS BIGINT), CAST(SUM(v) AS BIGINT), "
        "CAST(SUM(CASE WHEN d = first_d THEN v ELSE 0 END) AS BIGINT) "
        "FROM (SELECT cid, d, v, MIN(d) OVER (PARTITION BY cid) AS first_d "
        f"FROM ({orders_sql}) o) s GROUP BY cid ORDER BY cid",
        params,
        7,
    )
    # No profiling without a basis (docs/privacy.md): customers who objected to analytics
    # (or, when analytics needs consent, who did not give it) are not scored.
    default, decisions = basis_decisions(purpose="analytics")
    if default:
        skip = [cid for cid, granted in decisions.items() if not granted]
        if skip:
            per_customer = per_customer[~np.isin(per_customer[:, 0], skip)]
    else:
        allowed = [cid for cid, granted in decisions.items() if granted]
        per_customer = per_customer[np.isin(per_customer[:, 0], allowed)]
    # The tracking plot needs repeat purchases per day; on a large base a systematic sample
    # of customers (every k-th id) draws the same curves at a fraction of the cost.
    every = max(1, -(-len(per_customer) // TRACKING_SAMPLE))
    per_day = _fetch_int64(
        "SELECT CAST(d AS BIGINT), CAST(COUNT(DISTINCT cid) AS BIGINT) "  # noqa: S608
        f"FROM ({orders_sql}) o WHERE cid %% {every} = 0 GROUP BY d",
        params,
        2,
    )
    as_of_day = int((as_of.astimezone(zone).date() - datetime(1970, 1, 1).date()).days)
    first_day = per_customer[:, 3]
    purchases = Purchases(
        customer_id=per_customer[:, 0],
        purchase_days=per_customer[:, 1],
        orders=per_customer[:, 2],
        first_day=first_day,
        last_day=per_customer[:, 4],
        total=per_customer[:, 5].astype(np.float64),
        first_value=per_customer[:, 6].astype(np.float64),
        as_of_day=as_of_day,
    )
    if len(purchases):
        start = int(first_day.min())
        length = as_of_day - start + 1
        buying = np.zeros(length, dtype=np.int64)
        inside = (per_day[:, 0] >= start) & (per_day[:, 0] < start + length)
        np.add.at(buying, per_day[inside, 0] - start, per_day[inside, 1])
        sampled = purchases.customer_id % every == 0
        firsts = np.bincount(first_day[sampled] - start, minlength=length)[:length]
        purchases.repeat_by_day = buying - firsts
        purchases.tracking_sample = sampled
    return purchases


def read_monthly(*, as_of: datetime, currency: str, zone: ZoneInfo) -> np.ndarray:
    """Rows (customer, month, orders, purchase days, value, first day, last day) per customer
    and local calendar month with purchases; month = year * 12 + month - 1."""
    conn = connection()
    dialect = Dialect(conn, zone)
    orders_sql, params = _orders_sql(dialect, as_of, currency)
    d = dialect.day_to_date("d")
    if conn.vendor == "postgresql":
        year, month_of_year = f"EXTRACT(YEAR FROM {d})", f"EXTRACT(MONTH FROM {d})"
        month = f"(CAST({year} AS BIGINT) * 12 + CAST({month_of_year} AS BIGINT) - 1)"
    else:
        year, month_of_year = f"strftime('%%Y', {d})", f"strftime('%%m', {d})"
        month = f"(CAST({year} AS INTEGER) * 12 + CAST({month_of_year} AS INTEGER) - 1)"
    return _fetch_int64(
        f"SELECT cid, CAST(m AS BIGINT), CAST(COUNT(*) AS BIGINT), "  # noqa: S608
        "CAST(COUNT(DISTINCT d) AS BIGINT), CAST(SUM(v) AS BIGINT), CAST(MIN(d) AS BIGINT), "
        f"CAST(MAX(d) AS BIGINT) FROM (SELECT cid, d, v, {month} AS m FROM ({orders_sql}) o) s "
        "GROUP BY cid, m",
        params,
        7,
    )


# --- writing scores ---------------------------------------------------------------------

STAGE = "analytics_score_stage"
# (column, PostgreSQL type, NumPy type) of the staging table: fixed-width numbers only, so
# PostgreSQL's binary COPY rows are built by NumPy in one go.
STAGE_COLUMNS: list[tuple[str, str, str]] = [
    ("customer_id", "bigint", ">i8"),
    ("orders", "bigint", ">i8"),
    ("frequency", "bigint", ">i8"),
    ("recency_days", "bigint", ">i8"),
    ("age_days", "bigint", ">i8"),
    ("first_day", "bigint", ">i8"),
    ("last_day", "bigint", ">i8"),
    ("monetary_minor", "bigint", ">i8"),
    ("r_score", "bigint", ">i8"),
    ("f_score", "bigint", ">i8"),
    ("m_score", "bigint", ">i8"),
    ("segment_code", "bigint", ">i8"),
    ("p_alive", "double precision", ">f8"),
    ("expected_purchases_30d", "double precision", ">f8"),
    ("expected_purchases", "double precision", ">f8"),
    ("expected_aov_minor", "bigint", ">i8"),
    ("clv_minor", "bigint", ">i8"),
    ("expected_gap_days", "double precision", ">f8"),
    ("days_overdue", "bigint", ">i8"),
    ("at_risk", "bigint", ">i8"),
]


def _stage_values(scores: Scores) -> list[np.ndarray]:
    return [
        scores.customer_id,
        scores.orders,
        scores.frequency,
        scores.recency_days,
        scores.age_days,
        scores.first_day,
        scores.last_day,
        np.rint(scores.monetary).astype(np.int64),
        scores.r,
        scores.f,
        scores.m,
        scores.segment,
        np.clip(scores.p_alive, 0.0, 1.0),
        scores.expected_30d,
        scores.expected_horizon,
        np.rint(scores.expected_aov).astype(np.int64),
        np.rint(scores.clv).astype(np.int64),
        scores.expected_gap,
        scores.days_overdue,
        scores.at_risk.astype(np.int64),
    ]


def _copy_in(conn: BaseDatabaseWrapper, values: list[np.ndarray], chunk: int = 100_000) -> None:
    """Binary COPY of the staged columns, built by NumPy `chunk` rows at a time."""
    record = np.dtype(
        [("fields", ">i2")]
        + [
            item
            for i, column in enumerate(STAGE_COLUMNS)
            for item in ((f"l{i}", ">i4"), (f"v{i}", column[2]))
        ]
    )
    columns = ", ".join(name for name, _t, _n in STAGE_COLUMNS)
    sql = f"COPY {STAGE} ({columns}) FROM STDIN (FORMAT binary)"
    with conn.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0))
        for start in range(0, len(values[0]), chunk):
            rows = np.empty(min(chunk, len(values[0]) - start), dtype=record)
            rows["fields"] = len(STAGE_COLUMNS)
            for i, column in enumerate(values):
                rows[f"l{i}"] = 8
                rows[f"v{i}"] = column[start : start + len(rows)]
            copy.write(rows.tobytes())
        copy.write(b"\xff\xff")


def stage_scores(scores: Scores) -> None:
    """Put the new scores into a temporary staging table (dropped at commit)."""
    conn = connection()
    columns = ", ".join(f"{name} {kind}" for name, kind, _n in STAGE_COLUMNS)
    with conn.cursor() as cursor:
        cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
        if conn.vendor == "postgresql":
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGE} ({columns}) ON COMMIT DROP")
        else:
            cursor.execute(f"CREATE TEMPORARY TABLE {STAGE} ({columns})")
    values = _stage_values(scores)
    if conn.vendor == "postgresql":
        _copy_in(conn, values)
    else:
        rows = list(zip(*(v.tolist() for v in values), strict=True))
        marks = ", ".join(["%s"] * len(STAGE_COLUMNS))
        with conn.cursor() as cursor:
            cursor.executemany(f"INSERT INTO {STAGE} VALUES ({marks})", rows)  # noqa: S608
    with conn.cursor() as cursor:
        if conn.vendor != "postgresql":
            cursor.execute(f"CREATE INDEX {STAGE}_customer ON {STAGE} (customer_id)")
        cursor.execute(f"ANALYZE {STAGE}")


def newly_at_risk(threshold: float) -> list[int]:
    """Customers at risk in the staged scores whose stored churn risk was below
    `threshold`: the ones that crossed it in this run."""
    table = CustomerScore._meta.db_table
    with connection().cursor() as cursor:
        cursor.execute(
            f"SELECT n.customer_id FROM {STAGE} n JOIN {table} o "  # noqa: S608
            "ON o.customer_id = n.customer_id WHERE n.at_risk = 1 AND 1 - o.p_alive < %s "
            "ORDER BY n.customer_id",
            [threshold],
        )
        return [row[0] for row in cursor.fetchall()]


def replace_scores(*, run_id: int, model_version: str, scored_at: datetime, currency: str) -> int:
    """Make the staged scores the current ones (call inside the run's transaction): the
    previous rows all go, the staged ones of customers that still exist come in. Returns
    the number of rows stored."""
    conn = connection()
    table = CustomerScore._meta.db_table
    customers = CustomerScore._meta.get_field("customer").related_model._meta.db_table  # type: ignore[union-attr]
    dialect = Dialect(conn, ZoneInfo("UTC"))
    segment = (
        "CASE n.segment_code "
        + " ".join(f"WHEN {i} THEN '{name}'" for i, name in enumerate(rfm.SEGMENTS))
        + " END"
    )
    targets = [
        ("customer_id", "n.customer_id"),
        ("run_id", "%s"),
        ("model_version", "%s"),
        ("scored_at", "%s"),
        ("currency", "%s"),
        ("orders", "n.orders"),
        ("frequency", "n.frequency"),
        ("recency_days", "n.recency_days"),
        ("age_days", "n.age_days"),
        ("first_purchase", dialect.day_to_date("n.first_day")),
        ("last_purchase", dialect.day_to_date("n.last_day")),
        ("monetary_minor", "n.monetary_minor"),
        ("r_score", "n.r_score"),
        ("f_score", "n.f_score"),
        ("m_score", "n.m_score"),
        ("segment", segment),
        ("p_alive", "n.p_alive"),
        ("expected_purchases_30d", "n.expected_purchases_30d"),
        ("expected_purchases", "n.expected_purchases"),
        ("expected_aov_minor", "n.expected_aov_minor"),
        ("clv_minor", "n.clv_minor"),
        ("expected_gap_days", "n.expected_gap_days"),
        ("days_overdue", "n.days_overdue"),
        ("at_risk", "n.at_risk = 1"),
    ]
    columns = ", ".join(name for name, _e in targets)
    expressions = ", ".join(expression for _n, expression in targets)
    adapt = conn.ops.adapt_datetimefield_value
    with conn.cursor() as cursor:
        # Every score is replaced: deleting all and inserting is several times faster than
        # an upsert of a million rows, and readers see the old scores until the commit.
        cursor.execute(f"DELETE FROM {table}")  # noqa: S608
        cursor.execute(
            f"INSERT INTO {table} ({columns}) SELECT {expressions} FROM {STAGE} n "  # noqa: S608
            f"JOIN {customers} c ON c.id = n.customer_id",
            [run_id, model_version, adapt(scored_at), currency],
        )
        stored = cursor.rowcount
        if conn.vendor != "postgresql":
            cursor.execute(f"DROP TABLE IF EXISTS {STAGE}")
    return int(stored)
