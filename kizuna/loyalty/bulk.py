"""Set-based writes for batches: earning for many orders at once (imports, the demo), and
the pieces the monthly expiry and tier evaluation use. The same ledger rules as the
services: one entry per movement, lots with their allocations, balances moved by deltas
under row locks, idempotency keys unique."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connections, router, transaction

from kizuna.catalog.models import Product
from kizuna.core.bulk import allocate_ids, batched, table_insert
from kizuna.core.timeutil import JST
from kizuna.customers.bulk import EventRow, events_insert
from kizuna.customers.models import Event
from kizuna.loyalty import rules
from kizuna.loyalty.models import (
    Account,
    EntryKind,
    EntrySource,
    LedgerEntry,
    Lot,
    LotKind,
)

ENTRY_FIELDS = [
    "id",
    "account",
    "kind",
    "points",
    "balance_after",
    "spend_minor",
    "idempotency_key",
    "payload_hash",
    "reason",
    "source",
    "source_ref",
    "allocations",
    "occurred_at",
    "created_at",
]
LOT_FIELDS = [
    "id",
    "account",
    "entry",
    "kind",
    "points",
    "remaining",
    "value_per_point",
    "earned_at",
    "expires_on",
]
Progress = Callable[[int], None]


def _connection() -> Any:
    return connections[router.db_for_write(LedgerEntry)]


def copy_rows(model: type[Any], fields: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Insert rows (tuples in `fields` order): COPY on PostgreSQL, batched INSERT elsewhere."""
    connection = _connection()
    if connection.vendor != "postgresql":
        return table_insert(model, fields, rows)
    meta = model._meta
    columns = ", ".join(connection.ops.quote_name(meta.get_field(f).column) for f in fields)
    json_at = {
        i for i, f in enumerate(fields) if meta.get_field(f).get_internal_type() == "JSONField"
    }
    written = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        sql = f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"
        with raw.copy(sql) as copy:
            for row in rows:
                if json_at:
                    row = [json.dumps(v) if i in json_at else v for i, v in enumerate(row)]
                copy.write_row(row)
                written += 1
    return written


def update_balances(deltas: Sequence[tuple[int, int]]) -> None:
    """balance += delta for each (account id, delta); the accounts are locked by the caller."""
    connection = _connection()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for chunk in batched(deltas, 100_000):
                cursor.execute(
                    "UPDATE loyalty_account AS a SET balance = a.balance + u.d "
                    "FROM unnest(%s::bigint[], %s::bigint[]) AS u(id, d) WHERE a.id = u.id",
                    [[c[0] for c in chunk], [c[1] for c in chunk]],
                )
        else:
            cursor.executemany(
                "UPDATE loyalty_account SET balance = balance + %s WHERE id = %s",
                [(d, a) for a, d in deltas],
            )


def update_tiers(changes: Sequence[tuple[int, int | None, int, date | None]], today: date) -> int:
    """Set (tier, qualifying value, kept-until) per account id."""
    connection = _connection()
    adapt = connection.ops.adapt_datefield_value
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for chunk in batched(changes, 100_000):
                cursor.execute(
                    "UPDATE loyalty_account AS a SET tier_id = u.t, tier_value = u.v, "
                    "tier_kept_until = u.k, tier_evaluated_on = %s "
                    "FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::date[]) "
                    "AS u(id, t, v, k) WHERE a.id = u.id",
                    [
                        today,
                        [c[0] for c in chunk],
                        [c[1] for c in chunk],
                        [c[2] for c in chunk],
                        [c[3] for c in chunk],
                    ],
                )
        else:
            cursor.executemany(
                "UPDATE loyalty_account SET tier_id = %s, tier_value = %s, tier_kept_until = %s, "
                "tier_evaluated_on = %s WHERE id = %s",
                [(t, v, adapt(k), adapt(today), a) for a, t, v, k in changes],
            )
    return len(changes)


def insert_events(type: str, rows: Sequence[tuple[int, str, dict[str, Any]]], at: datetime) -> int:
    """Timeline events for a batch: (customer id, message id, properties)."""
    return insert_events_at(type, [(c, m, p, at) for c, m, p in rows])


def insert_entries(rows: Sequence[dict[str, Any]], *, event_type: str = "") -> None:
    """Entries given as dicts (without ids); with `event_type`, one timeline event each."""
    ids = allocate_ids(LedgerEntry, len(rows))
    stamp = datetime.now(tz=JST)
    copy_rows(
        LedgerEntry,
        ENTRY_FIELDS,
        (
            (
                entry_id,
                r["account_id"],
                r["kind"],
                r["points"],
                r["balance_after"],
                r["spend_minor"],
                r["idempotency_key"],
                r["payload_hash"],
                r["reason"],
                r["source"],
                r["source_ref"],
                r["allocations"],
                r["occurred_at"],
                stamp,
            )
            for entry_id, r in zip(ids, rows, strict=True)
        ),
    )
    if event_type:
        customers = (
            dict(
                Account.objects.filter(pk__in={r["account_id"] for r in rows}).values_list(
                    "pk", "customer_id"
                )
            )
            if len(rows) < 50_000
            else dict(Account.objects.values_list("pk", "customer_id"))
        )
        insert_events(
            event_type,
            [
                (
                    customers[r["account_id"]],
                    f"{event_type}:{entry_id}",
                    {"entry_id": entry_id, "points": r["points"], "balance": r["balance_after"]},
                )
                for entry_id, r in zip(ids, rows, strict=True)
            ],
            rows[0]["occurred_at"] if rows else stamp,
        )


@dataclass(frozen=True)
class OrderEarnRow:
    customer_id: int
    order_id: int
    number: str
    total: int
    placed_at: datetime
    lines: Sequence[tuple[str, int]] = field(default_factory=tuple)  # (sku, line total)


def accounts_ensure(customer_ids: Iterable[int]) -> dict[int, int]:
    """Account id per customer id, creating the missing accounts in bulk."""
    from kizuna.loyalty.services import member_number

    wanted = set(customer_ids)
    have = dict(Account.objects.values_list("customer_id", "pk")) if wanted else {}
    missing = sorted(wanted - set(have))
    if missing:
        stamp = datetime.now(tz=JST)
        ids = allocate_ids(Account, len(missing))
        copy_rows(
            Account,
            ["id", "customer", "member_number", "balance", "tier_value", "created_at"],
            (
                (account_id, cid, member_number(cid), 0, 0, stamp)
                for account_id, cid in zip(ids, missing, strict=True)
            ),
        )
        have.update(zip(missing, ids, strict=True))
    return {c: have[c] for c in wanted}


def points_earn_batch(
    rows: Sequence[OrderEarnRow], *, events: bool = False, progress: Progress | None = None
) -> tuple[int, int]:
    """Earn points for many orders in one transaction: (entries written, points).
    Orders that already earned are skipped, so a batch can be re-run."""
    from kizuna.loyalty.services import (
        earn_rules,
        member_number,
        order_digest,
        programme_get,
        tier_rules,
    )

    programme = programme_get()
    earn = earn_rules(programme)
    multipliers = {t.id: t.multiplier for t in tier_rules(programme)}
    campaigns = list(programme.campaigns.values_list("starts_at", "ends_at", "multiplier"))
    categories: dict[str, str] = dict(
        Product.objects.filter(category__isnull=False).values_list("sku", "category__slug")
    )
    value = programme.point_value
    with transaction.atomic():
        # Existing members are locked (in id order); new members' accounts are created
        # below with their final balance, after the entries are computed.
        have = dict(Account.objects.values_list("customer_id", "pk"))
        wanted = {r.customer_id for r in rows}
        new_customers = sorted(wanted - set(have))
        postgresql = _connection().vendor == "postgresql"
        # On PostgreSQL new accounts get their ids when written (stand-in: -customer id).
        new_ids = (
            [-c for c in new_customers] if postgresql else allocate_ids(Account, len(new_customers))
        )
        account_of = {c: have[c] for c in wanted if c in have}
        account_of.update(zip(new_customers, new_ids, strict=True))
        locked: dict[int, tuple[int, int | None]] = {pk: (0, None) for pk in new_ids}
        for chunk in batched(sorted(account_of[c] for c in wanted if c in have), 50_000):
            for pk, balance, tier in (
                Account.objects.select_for_update()
                .filter(pk__in=chunk)
                .order_by("pk")
                .values_list("pk", "balance", "tier_id")
            ):
                locked[pk] = (balance, tier)
        done: set[str] = set(
            LedgerEntry.objects.filter(kind=EntryKind.EARN, source=EntrySource.ORDER).values_list(
                "idempotency_key", flat=True
            )
        )
        balances = {pk: b for pk, (b, _t) in locked.items()}
        entries: list[tuple[Any, ...]] = []
        lots: list[tuple[Any, ...]] = []
        expiry_memo: dict[date, date | None] = {}
        ordered = sorted(rows, key=lambda r: (r.placed_at, r.order_id))
        for row in ordered:
            key = f"earn:order:{row.order_id}"
            if key in done or row.total <= 0:
                continue
            account_id = account_of[row.customer_id]
            tier_id = locked[account_id][1]
            campaign = Decimal(1)
            for starts, ends, mult in campaigns:
                if starts <= row.placed_at < ends:
                    campaign = max(campaign, mult)
            points = rules.order_points(
                total=row.total,
                lines=[rules.Line(sku, categories.get(sku, ""), t) for sku, t in row.lines],
                rules=earn,
                tier_multiplier=multipliers.get(tier_id, Decimal(1)) if tier_id else Decimal(1),
                campaign_multiplier=campaign,
            )
            if points <= 0:
                continue
            done.add(key)
            before = balances[account_id]
            lot_points = points - max(0, -before) if before < 0 else points
            balances[account_id] = before + points
            day = row.placed_at.astimezone(JST).date()
            if day not in expiry_memo:
                expiry_memo[day] = rules.expiry_date(day, programme.expiry_months)
            entries.append(
                (account_id, points, before + points, row, key, lot_points, expiry_memo[day])
            )
        if postgresql:
            new_accounts = list(zip(new_ids, new_customers, strict=True))
            total_points = _earn_write_postgresql(
                entries, new_accounts, balances, value, events=events
            )
            return len(entries), total_points
        entry_ids = allocate_ids(LedgerEntry, len(entries))
        lot_count = sum(1 for e in entries if e[5] > 0)
        lot_ids = iter(allocate_ids(Lot, lot_count))
        stamp = datetime.now(tz=JST)
        entry_rows = []
        for entry_id, (account_id, points, after, row, key, lot_points, expires) in zip(
            entry_ids, entries, strict=True
        ):
            lot_id = next(lot_ids) if lot_points > 0 else None
            entry_rows.append(
                (
                    entry_id,
                    account_id,
                    EntryKind.EARN.value,
                    points,
                    after,
                    row.total,
                    key,
                    order_digest(row.order_id, row.total),
                    f"Order {row.number}"[:200],
                    EntrySource.ORDER.value,
                    f"order:{row.order_id}",
                    [[lot_id, lot_points]] if lot_id else [],
                    row.placed_at,
                    stamp,
                )
            )
            if lot_id:
                lots.append(
                    (
                        lot_id,
                        account_id,
                        entry_id,
                        LotKind.FREE.value,
                        lot_points,
                        lot_points,
                        value,
                        row.placed_at,
                        expires,
                    )
                )
            if progress is not None and len(entry_rows) % 10_000 == 0:
                progress(10_000)
        copy_rows(
            Account,
            ["id", "customer", "member_number", "balance", "tier_value", "created_at"],
            (
                (pk, c, member_number(c), balances[pk], 0, stamp)
                for c, pk in zip(new_customers, new_ids, strict=True)
            ),
        )
        copy_rows(LedgerEntry, ENTRY_FIELDS, entry_rows)
        copy_rows(Lot, LOT_FIELDS, lots)
        fresh = set(new_ids)
        deltas: dict[int, int] = {}
        total_points = 0
        for account_id, points, *_rest in entries:
            total_points += points
            if account_id not in fresh:
                deltas[account_id] = deltas.get(account_id, 0) + points
        update_balances(sorted(deltas.items()))
        if events:
            customer_of = {a: c for c, a in account_of.items()}
            insert_events_at(
                "points.earned",
                [
                    (
                        customer_of[r[1]],
                        f"points.earned:{r[0]}",
                        {
                            "entry_id": r[0],
                            "points": r[3],
                            "balance": r[4],
                            "order_id": int(r[10].split(":")[1]),
                        },
                        r[12],
                    )
                    for r in entry_rows
                ],
            )
    return len(entry_rows), total_points


def _sequence(cursor: Any, table: str) -> str:
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    return str(cursor.fetchone()[0])


# Entries and lots written by a batch reference only rows this very transaction created or
# holds FOR UPDATE (the members' accounts, the entries just inserted), so PostgreSQL's
# per-row foreign-key triggers on those two inserts cannot find anything wrong: when the
# database role may set `session_replication_role` (a superuser, or on PostgreSQL 15+ a
# role granted `SET ON PARAMETER session_replication_role`), they are switched off for
# those two statements only. Otherwise (or with this False) every row is checked.
SKIP_OWN_FK_CHECKS = True
# Local buffers for the staging tables (only takes effect before a session's first temp
# table; 1M staged orders are about 150 MB).
TEMP_BUFFERS = "256MB"


def _without_own_fk_checks(cursor: Any) -> bool:
    """Switch off trigger-based checks until `_with_fk_checks` (see SKIP_OWN_FK_CHECKS).
    True when it could."""
    from django.db import DatabaseError

    if not SKIP_OWN_FK_CHECKS:
        return False
    try:
        with transaction.atomic():
            cursor.execute("SET LOCAL session_replication_role = replica")
    except DatabaseError:  # not allowed for this role: the checked path
        return False
    return True


def _with_fk_checks(cursor: Any) -> None:
    cursor.execute("SET LOCAL session_replication_role = origin")


def _earn_write_postgresql(
    entries: Sequence[tuple[Any, ...]],
    new_accounts: Sequence[tuple[int, int]],
    balances: dict[int, int],
    value: Decimal,
    *,
    events: bool,
) -> int:
    """Write computed earn entries set-based: the rows go once through COPY into temporary
    tables, and INSERT ... SELECT builds accounts, entries (with their lot allocations and
    payload hashes), lots and, optionally, timeline events inside the server. Returns the
    points."""
    from kizuna.loyalty.services import member_number

    connection = _connection()
    total_points = 0
    with connection.cursor() as cursor:
        raw = cursor.cursor
        entry_seq = _sequence(cursor, "loyalty_ledgerentry")
        lot_seq = _sequence(cursor, "loyalty_lot")
        cursor.execute(f"SET LOCAL temp_buffers = '{TEMP_BUFFERS}'")
        account_seq = _sequence(cursor, "loyalty_account")
        cursor.execute(
            f"CREATE TEMP TABLE tmp_loyalty_new (id bigint DEFAULT nextval('{account_seq}'), "
            "customer_id bigint, member_number text, balance bigint) ON COMMIT DROP"
        )
        with raw.copy(
            "COPY tmp_loyalty_new (customer_id, member_number, balance) FROM STDIN"
        ) as copy:
            for ref, c in new_accounts:
                copy.write_row((c, member_number(c), balances[ref]))
        # Customers are not ours to lock: the new accounts' references to them are checked.
        cursor.execute(
            "INSERT INTO loyalty_account (id, customer_id, member_number, balance, tier_value, "
            "created_at) SELECT id, customer_id, member_number, balance, 0, now() "
            "FROM tmp_loyalty_new"
        )
        cursor.execute("CREATE INDEX ON tmp_loyalty_new (customer_id)")
        cursor.execute("ANALYZE tmp_loyalty_new")
        # account_ref: the account id, or -customer id for the accounts just created.
        cursor.execute(
            "CREATE TEMP TABLE tmp_loyalty_earn (account_ref bigint, "
            "points bigint, balance_after bigint, spend bigint, order_id bigint, number text, "
            "placed_at timestamptz, lot_points bigint, expires_on date, "
            f"entry_id bigint DEFAULT nextval('{entry_seq}'), "
            f"lot_id bigint DEFAULT nextval('{lot_seq}')) ON COMMIT DROP"
        )
        columns = (
            "account_ref, points, balance_after, spend, order_id, number, placed_at, "
            "lot_points, expires_on"
        )
        with raw.copy(f"COPY tmp_loyalty_earn ({columns}) FROM STDIN") as copy:
            for account_id, points, after, row, _key, lot_points, expires in entries:
                total_points += points
                copy.write_row(
                    (
                        account_id,
                        points,
                        after,
                        row.total,
                        row.order_id,
                        row.number,
                        row.placed_at,
                        lot_points,
                        expires,
                    )
                )
        cursor.execute("ANALYZE tmp_loyalty_earn")
        account = "COALESCE(n.id, t.account_ref)"
        join = (
            "FROM tmp_loyalty_earn AS t LEFT JOIN tmp_loyalty_new AS n "
            "ON t.account_ref < 0 AND n.customer_id = -t.account_ref"
        )
        unchecked = _without_own_fk_checks(cursor)
        # The payload hash is services.order_digest's, computed by the server.
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (id, account_id, kind, points, balance_after, "
            "spend_minor, idempotency_key, payload_hash, reason, source, source_ref, staff_id, "
            "allocations, occurred_at, created_at) "
            f"SELECT t.entry_id, {account}, 'earn', t.points, t.balance_after, t.spend, "
            "'earn:order:' || t.order_id, "
            "encode(sha256(convert_to('earn:' || t.order_id || ':' || t.spend, 'UTF8')), 'hex'), "
            "left('Order ' || t.number, 200), 'order', 'order:' || t.order_id, NULL, "
            "CASE WHEN t.lot_points > 0 THEN "
            "jsonb_build_array(jsonb_build_array(t.lot_id, t.lot_points)) ELSE '[]'::jsonb END, "
            f"t.placed_at, now() {join}"
        )
        cursor.execute(
            "INSERT INTO loyalty_lot (id, account_id, entry_id, kind, points, remaining, "
            "value_per_point, earned_at, expires_on) "
            f"SELECT t.lot_id, {account}, t.entry_id, 'free', t.lot_points, t.lot_points, "
            f"%s, t.placed_at, t.expires_on {join} WHERE t.lot_points > 0",
            [value],
        )
        if unchecked:
            _with_fk_checks(cursor)
        cursor.execute(
            "UPDATE loyalty_account AS a SET balance = a.balance + d.p FROM ("
            "SELECT account_ref, SUM(points) AS p FROM tmp_loyalty_earn "
            "WHERE account_ref > 0 GROUP BY account_ref) AS d WHERE a.id = d.account_ref"
        )
        if events:
            cursor.execute(
                "INSERT INTO customers_event (message_id, type, customer_id, anonymous_id, "
                "occurred_at, received_at, source, properties, context) "
                "SELECT 'points.earned:' || t.entry_id, 'points.earned', "
                "COALESCE(a.customer_id, -t.account_ref), '', t.placed_at, t.placed_at, "
                "'kizuna', jsonb_build_object('entry_id', t.entry_id, 'points', t.points, "
                "'balance', t.balance_after, 'order_id', t.order_id), '{}'::jsonb "
                "FROM tmp_loyalty_earn AS t LEFT JOIN loyalty_account AS a "
                "ON a.id = t.account_ref"
            )
    return total_points


def insert_events_at(type: str, rows: Sequence[tuple[int, str, dict[str, Any], datetime]]) -> int:
    """Timeline events (customer id, message id, properties, occurred at), written like
    `kizuna.customers.bulk.events_insert` (COPY on PostgreSQL). Batches do not publish
    them on the bus: subscribers react to the per-customer services' events."""
    if _connection().vendor != "postgresql":
        return events_insert(
            EventRow(type=type, customer_id=c, occurred_at=at, properties=p, message_id=m)
            for c, m, p, at in rows
        )
    return copy_rows(
        Event,
        [
            "message_id",
            "type",
            "customer",
            "anonymous_id",
            "occurred_at",
            "received_at",
            "source",
            "properties",
            "context",
        ],
        ((m, type, c, "", at, at, "kizuna", p, {}) for c, m, p, at in rows),
    )


@dataclass(frozen=True)
class RefundRow:
    order_id: int
    amount: int
    ref: str  # unique per refund: the reversal's idempotency key is "reversal:<ref>"
    at: datetime


def points_reverse_batch(rows: Sequence[RefundRow]) -> int:
    """Reverse the refunded share of orders' points for many refunds at once, with the same
    rules as `points_reverse_for_refund` (cumulative share, FIFO lots, capped at the balance
    unless the programme allows negative balances). Returns the entries written."""
    from kizuna.loyalty.services import payload_hash, programme_get

    programme = programme_get()
    allow_negative = programme.allow_negative
    with transaction.atomic():
        earned = {
            int(ref.split(":")[1]): (account_id, points, spend)
            for ref, account_id, points, spend in LedgerEntry.objects.filter(
                kind=EntryKind.EARN,
                source=EntrySource.ORDER,
                source_ref__in=[f"order:{r.order_id}" for r in rows],
            ).values_list("source_ref", "account_id", "points", "spend_minor")
        }
        done = set(
            LedgerEntry.objects.filter(
                idempotency_key__in=[f"reversal:{r.ref}" for r in rows]
            ).values_list("idempotency_key", flat=True)
        )
        accounts = sorted({earned[r.order_id][0] for r in rows if r.order_id in earned})
        balances = dict(
            Account.objects.select_for_update()
            .filter(pk__in=accounts)
            .order_by("pk")
            .values_list("pk", "balance")
        )
        lots: dict[int, list[rules.OpenLot]] = {}
        for lot_id, account_id, remaining, expires_on, earned_at, kind in Lot.objects.filter(
            account_id__in=accounts, remaining__gt=0
        ).values_list("id", "account_id", "remaining", "expires_on", "earned_at", "kind"):
            lots.setdefault(account_id, []).append(
                rules.OpenLot(lot_id, remaining, expires_on, earned_at, kind == LotKind.PAID)
            )
        refunded: dict[int, int] = {}
        entries: list[dict[str, Any]] = []
        changed: dict[int, rules.OpenLot] = {}
        deltas: dict[int, int] = {}
        for row in sorted(rows, key=lambda r: r.at):
            key = f"reversal:{row.ref}"
            if row.order_id not in earned or key in done or row.amount <= 0:
                continue
            account_id, points_earned, total = earned[row.order_id]
            before = refunded.get(row.order_id, 0)
            amount = min(row.amount, max(0, total - before))
            refunded[row.order_id] = before + amount
            points = rules.refund_reversal(
                earned=points_earned, total=total, refunded_before=before, amount=amount
            )
            balance = balances[account_id]
            if not allow_negative:
                points = min(points, max(0, balance))
            if points <= 0:
                continue
            taken = rules.fifo_allocate(
                lots.get(account_id, []),
                min(points, max(0, balance)),
                programme.paid_points_order,
            )
            by_id = {lot.id: lot for lot in lots.get(account_id, [])}
            for lot_id, take in taken:
                by_id[lot_id].remaining -= take
                changed[lot_id] = by_id[lot_id]
            balances[account_id] = balance - points
            deltas[account_id] = deltas.get(account_id, 0) - points
            entries.append(
                {
                    "account_id": account_id,
                    "kind": EntryKind.REVERSAL.value,
                    "points": -points,
                    "balance_after": balance - points,
                    "spend_minor": -amount,
                    "idempotency_key": key,
                    "payload_hash": payload_hash({"order": row.order_id, "amount": row.amount}),
                    "reason": f"Refund of order {row.order_id}",
                    "source": EntrySource.ORDER.value,
                    "source_ref": f"order:{row.order_id}",
                    "allocations": [[lot_id, -take] for lot_id, take in taken],
                    "occurred_at": row.at,
                }
            )
        if entries:
            insert_entries(entries)
            connection = _connection()
            with connection.cursor() as cursor:
                cursor.executemany(
                    "UPDATE loyalty_lot SET remaining = %s WHERE id = %s",
                    [(lot.remaining, lot.id) for lot in changed.values()],
                )
            update_balances(sorted(deltas.items()))
    return len(entries)


EXPIRE_SQL = """
WITH due AS (
    SELECT account_id, SUM(remaining) AS pts,
           json_agg(json_build_array(id, -remaining) ORDER BY expires_on, id) AS alloc
    FROM loyalty_lot
    WHERE account_id BETWEEN %(lo)s AND %(hi)s AND expires_on < %(today)s AND remaining > 0
    GROUP BY account_id
), lots AS (
    UPDATE loyalty_lot SET remaining = 0
    WHERE account_id BETWEEN %(lo)s AND %(hi)s AND expires_on < %(today)s AND remaining > 0
    RETURNING 1
), accounts AS (
    UPDATE loyalty_account AS a SET balance = a.balance - due.pts
    FROM due WHERE a.id = due.account_id
    RETURNING a.id, a.customer_id, a.balance, due.pts, due.alloc
), entries AS (
    INSERT INTO loyalty_ledgerentry (account_id, kind, points, balance_after, spend_minor,
        idempotency_key, payload_hash, reason, source, source_ref, staff_id, allocations,
        occurred_at, created_at)
    SELECT id, 'expire', -pts, balance, 0, 'expire:' || id || ':' || %(stamp)s,
        encode(sha256(convert_to('expire:' || %(stamp)s || ':' || pts, 'UTF8')), 'hex'),
        'Expired', 'system', '', NULL, alloc, %(at)s, %(at)s
    FROM accounts
    RETURNING id, account_id, points, balance_after
)
INSERT INTO customers_event (message_id, type, customer_id, anonymous_id, occurred_at,
    received_at, source, properties, context)
SELECT 'points.expired:' || e.id, 'points.expired', a.customer_id, '', %(at)s, %(at)s,
    'kizuna', json_build_object('entry_id', e.id, 'points', e.points,
    'balance', e.balance_after), '{}'::jsonb
FROM entries AS e JOIN accounts AS a ON a.id = e.account_id
RETURNING properties
"""


def expire_range_postgresql(lo: int, hi: int, today: date, at: datetime) -> tuple[int, int]:
    """Expire the due lots of accounts lo..hi in one statement (PostgreSQL): lock the
    accounts in id order, then lots, balances, entries and timeline events together.
    Returns (accounts, points)."""
    connection = _connection()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM loyalty_account WHERE id BETWEEN %s AND %s "
            "AND id IN (SELECT account_id FROM loyalty_lot WHERE account_id BETWEEN %s AND %s "
            "AND expires_on < %s AND remaining > 0) ORDER BY id FOR UPDATE",
            [lo, hi, lo, hi, today],
        )
        cursor.execute(
            EXPIRE_SQL, {"lo": lo, "hi": hi, "today": today, "stamp": today.isoformat(), "at": at}
        )
        rows = cursor.fetchall()
    points = 0
    for (props,) in rows:
        data = json.loads(props) if isinstance(props, str) else props
        points -= int(data["points"])
    return len(rows), points
