"""Writes of the tracking app: sources and their write keys, the inbox, and its processing
into identities, profiles and the event stream (the worker's job)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, connections, router, transaction
from django.utils.text import slugify
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core import ids
from kizuna.core.audit import acting_as
from kizuna.core.bulk import allocate_ids, batched, table_copy, table_insert
from kizuna.core.timeutil import now
from kizuna.core.wal import sync_to_disk
from kizuna.customers.bulk import EVENT_FIELDS, customers_seen_widen
from kizuna.customers.choices import IdentityKind
from kizuna.customers.identity_resolution import Subject, subjects_resolve
from kizuna.customers.merge import customer_merge
from kizuna.customers.models import Customer, Event, Identity
from kizuna.tracking import protocol
from kizuna.tracking.models import InboxBatch, Source

logger = logging.getLogger(__name__)
WRITE_KEY_PREFIX = "kzw"
DEFAULT_CHUNK = 5000
PENDING_WINDOWS = 5  # windows of pending batches looked at when others hold them all
PENDING_WINDOW_BATCHES = 500  # batches in one window


# --- sources ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedSource:
    source: Source
    write_key: str  # shown once, never stored


@transaction.atomic
def source_create(
    *, name: str, slug: str = "", created_by: AbstractBaseUser | None = None
) -> IssuedSource:
    """A new source with a fresh write key (only its digest is kept)."""
    name = (name or "").strip()
    slug = slugify(slug or name)[:50]
    errors: dict[str, list[str]] = {}
    if not name or len(name) > 100:
        errors["name"] = [_("Give the source a name of 1 to 100 characters.")]
    if not slug:
        errors["slug"] = [_("The slug needs letters or digits.")]
    elif Source.objects.filter(slug=slug).exists():
        errors["slug"] = [_("A source with this slug already exists.")]
    if errors:
        raise ValidationError(errors)
    key = ids.token(WRITE_KEY_PREFIX, 24)
    with acting_as(created_by):
        source = Source.objects.create(
            name=name,
            slug=slug,
            write_key_prefix=key[: len(WRITE_KEY_PREFIX) + 9],
            write_key_digest=ids.digest(key),
            created_by=created_by if getattr(created_by, "is_authenticated", False) else None,  # type: ignore[misc]
        )
    return IssuedSource(source=source, write_key=key)


def source_revoke(*, source: Source, actor: AbstractBaseUser | None = None) -> Source:
    with acting_as(actor):
        source.revoked_at = now()
        source.save(update_fields=["revoked_at"])
    return source


# --- the inbox: accept path ---------------------------------------------------------------


def inbox_accept(*, source_id: int, received_at: datetime, accepted: protocol.Accepted) -> int:
    """Store the validated messages of one request as one inbox row (a single INSERT, in
    autocommit: once this returns, the batch is durable). Returns the messages kept."""
    if not accepted.messages:
        return 0
    table_insert(
        InboxBatch,
        ["source", "received_at", "message_count", "payload", "processed_at"],
        [(source_id, received_at, len(accepted.messages), accepted.payload, None)],
    )
    return len(accepted.messages)


# --- the inbox: processing (worker) -------------------------------------------------------


@dataclass
class ProcessStats:
    batches: int = 0
    messages: int = 0
    events_added: int = 0
    duplicates: int = 0
    customers_created: int = 0
    merges: int = 0


# Called with the ids of batches processed (their transaction committed) but not yet marked.
MarkProcessed = Callable[[list[int]], None]


def _stored_message_ids(message_ids: Sequence[str]) -> set[str]:
    """Which of these message ids are already in the event stream: one query, the ids as
    one JSON parameter (psycopg adapts a long list element by element in Python; SQLite
    would need IN-lists of at most 32,766 parameters), an index probe per id."""
    if not message_ids:
        return set()
    table = connection.ops.quote_name(Event._meta.db_table)
    ids_json = orjson.dumps(list(message_ids)).decode()
    if connection.vendor == "postgresql":
        sql = (
            f"SELECT message_id FROM {table} WHERE message_id IN "  # noqa: S608 (a quoted name)
            "(SELECT json_array_elements_text(%s::json))"
        )
    else:
        sql = (
            f"SELECT message_id FROM {table} WHERE message_id IN "  # noqa: S608 (a quoted name)
            "(SELECT j.value FROM json_each(%s) AS j)"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, [ids_json])
        return {row[0] for row in cursor.fetchall()}


def _events_write(
    rows: list[tuple[Any, ...]], *, stored: bool = False, none_stored: bool = False
) -> set[int] | None:
    """Append event rows (`id` then `EVENT_FIELDS`, properties and context as JSON text)
    whose message ids were not stored when the chunk was checked; returns None when every
    row was inserted, else the ids of those that were. Another worker may have stored one
    of the message ids a moment earlier (two inbox batches of one retried message): that
    row is skipped, and not published. `stored`: the values are the database's own already
    (SQLite: times and JSON as text), inserted without adapting them again. `none_stored`:
    the message ids were not checked; one found stored raises _StoredBefore (on PostgreSQL
    an IntegrityError), for the caller to undo and check."""
    fields = ["id", *EVENT_FIELDS]
    if connection.vendor == "postgresql":
        # None of the message ids was stored a moment ago: COPY straight into the table, in
        # a savepoint. A conflict (another worker stored one meanwhile) undoes that COPY;
        # then COPY into a temporary table and INSERT ... SELECT ... ON CONFLICT DO NOTHING,
        # which counts the rows inserted (every row written twice: the slower way).
        if none_stored:  # a conflict fails the COPY, and the caller's savepoint undoes it
            table_copy(Event, fields, rows, json_text=True)
            return None
        try:
            with transaction.atomic(savepoint=True):
                table_copy(Event, fields, rows, json_text=True)
            return None
        except IntegrityError:
            pass
        copied = table_copy(Event, fields, rows, ignore_conflicts=True, json_text=True)
        if copied == len(rows):
            return None
    else:
        if stored:
            _insert_stored(rows)
        else:
            loads = protocol.loads
            values = [(*row[:8], loads(row[8]), loads(row[9])) for row in rows]
            table_insert(Event, fields, values, ignore_conflicts=True)
        # The ids are consecutive (serialised writers): count the ones present in their range.
        if _stored_in_range(rows[0][0], rows[-1][0]) == len(rows):
            return None
        if none_stored:
            raise _StoredBefore
    return _stored_ids([row[0] for row in rows])


def _insert_stored(given: list[tuple[Any, ...]]) -> None:
    """The event rows' INSERT (`ON CONFLICT DO NOTHING`) with values the database stores as
    they are: `table_insert` without its per-value adaptation."""
    quote = connection.ops.quote_name
    meta = Event._meta
    fields: list[Any] = [meta.get_field(name) for name in ["id", *EVENT_FIELDS]]
    columns = ", ".join(quote(field.column) for field in fields)
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({columns}) "  # noqa: S608 (quoted names only)
        f"VALUES ({', '.join(['%s'] * (len(EVENT_FIELDS) + 1))}) ON CONFLICT DO NOTHING"
    )
    with connection.cursor() as cursor:
        cursor.executemany(sql, given)


def _stored_in_range(first: int, last: int) -> int:
    """How many events have ids from `first` to `last` (a range of the primary key; an
    INSERT's executemany reports the rows given, not the rows inserted)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT COUNT(*) FROM {connection.ops.quote_name(Event._meta.db_table)} "  # noqa: S608
            "WHERE id BETWEEN %s AND %s",
            [first, last],
        )
        return int(cursor.fetchone()[0])


def _stored_ids(event_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in batched(event_ids, 5000):
        found.update(Event.objects.filter(pk__in=chunk).values_list("pk", flat=True))
    return found


def _pending(limit: int, database: str, skip: Collection[int]) -> list[tuple[int, int, str, int]]:
    """The oldest pending batches not in `skip`, up to about `limit`
    messages: (id, count, payload, source id). On PostgreSQL (inbox in the main database)
    locked for this transaction, skipping batches another worker holds.

    The ids and counts are read first and only the payloads of the batches taken after
    that (~400 KB each): reading the payloads of every pending batch in sight cost more
    than a tenth of the processing with a backlog."""
    locking = connections[database].vendor == "postgresql"
    after = 0
    for _window in range(PENDING_WINDOWS):
        qs = InboxBatch.objects.using(database).filter(processed_at__isnull=True, pk__gt=after)
        if skip:
            qs = qs.exclude(pk__in=list(skip))
        taken: list[int] = []
        total = 0
        candidates = list(
            qs.order_by("id").values_list("id", "message_count")[:PENDING_WINDOW_BATCHES]
        )
        for batch_id, count in candidates:
            taken.append(batch_id)
            total += count
            if total >= limit:
                break
        if not taken:
            return []
        chosen = InboxBatch.objects.using(database).filter(pk__in=taken, processed_at__isnull=True)
        if locking:
            chosen = chosen.select_for_update(skip_locked=True)
        rows = list(
            chosen.order_by("id").values_list("id", "message_count", "payload", "source_id")
        )
        if rows:
            return rows
        after = taken[-1]  # all held by other workers: the next ones
    return []


def inbox_process(
    *,
    max_messages: int | None = None,
    inbox: str | None = None,
    skip: Collection[int] = (),
    mark: MarkProcessed | None = None,
) -> ProcessStats:
    """Process the oldest pending inbox batches (up to about `max_messages` messages) in
    one transaction: resolve identities, update profiles, append new events (a messageId
    already stored is skipped), merge on alias, and mark the batches processed. A crash
    anywhere rolls all of it back, and the batches are processed again later.

    With the inbox in a database of its own (`inbox`, by default the router's choice), the
    batches are marked processed right after that transaction commits: a crash in between
    leaves them pending, and processing them again adds nothing (every message's id is then
    stored, and a stored messageId is skipped whole), so the effect is still exactly once.
    Processors queue for the main database's write lock before reading the inbox.

    `skip`: batches left out (processed, being marked by this process's drains). `mark`: with
    the inbox in a database of its own, called with the processed batches' ids once the
    transaction commits, instead of marking them here (the drain marks them on a thread of
    its own: on SQLite marking rewrites each batch's row, payload and all); it syncs the
    main database to disk before it marks (`core.wal.sync_to_disk`), as this does."""
    limit = max_messages or int(getattr(settings, "TRACKING_PROCESS_CHUNK", DEFAULT_CHUNK))
    inbox = inbox or router.db_for_write(InboxBatch)
    main = router.db_for_write(Event)
    stats = ProcessStats()
    with transaction.atomic(using=main):
        pending = _pending(limit, inbox, skip)
        if not pending:
            return stats
        slugs = dict(
            Source.objects.using(main)
            .filter(pk__in={row[3] for row in pending})
            .values_list("id", "slug")
        )
        messages: list[list[Any]] = []  # stored rows, each with its source's slug appended
        for _id, _count, payload, source_id in pending:
            slug = slugs[source_id]
            for row in protocol.stored_rows(payload):
                row.append(slug)
                messages.append(row)
        stats.batches, stats.messages = len(pending), len(messages)
        segment: list[list[Any]] = []
        for row in messages:
            if row[protocol.ROW_TYPE] == "alias":
                _process_segment(segment, stats)
                segment = []
                _process_alias(row, stats)
            segment.append(row)
        _process_segment(segment, stats)
        done = [row[0] for row in pending]
        if inbox == main:
            inbox_mark_processed(done, inbox=inbox)
    if inbox != main:
        if mark is None:
            # The commit on disk before the marks, or a power loss could keep the marks
            # and lose the events.
            sync_to_disk(main)
            inbox_mark_processed(done, inbox=inbox)
        else:
            mark(done)
    return stats


def inbox_mark_processed(batch_ids: list[int], *, inbox: str) -> int:
    return InboxBatch.objects.using(inbox).filter(pk__in=batch_ids).update(processed_at=now())


class _StoredBefore(Exception):
    """A message id of the chunk was in the event stream already (a retry)."""


# Chunks left to check for stored message ids first, after one that had some: a client
# retrying batches tends to retry more than one.
DEDUP_FIRST_AFTER_A_RETRY = 10
_dedup_first = {"chunks": 0}


def _process_segment(messages: Sequence[list[Any]], stats: ProcessStats) -> None:
    """Messages (stored rows, `protocol.stored_row`, their source's slug appended) without
    an alias among them: resolved, their events appended, first/last seen widened.

    A messageId seen before (stored, or earlier in this chunk) is a retry: skipped whole,
    identity and profile effects included. Retries are rare, so the chunk is first written
    as if none of its message ids were stored (in a savepoint); if the insert finds one
    stored, all of it is undone and the chunk written again without the stored ones
    (checked first for the next few chunks). That saves a query of the chunk's ids per
    chunk, an index probe per message."""
    if not messages:
        return
    seen: set[str] = set()
    fresh: list[list[Any]] = []
    duplicates = 0
    for message in messages:
        if message[0] in seen:
            duplicates += 1
            continue
        seen.add(message[0])
        fresh.append(message)
    if _dedup_first["chunks"] <= 0:
        attempt = ProcessStats()
        try:
            with transaction.atomic(savepoint=True):
                _append(fresh, attempt, none_stored=True)
        except (_StoredBefore, IntegrityError):
            _dedup_first["chunks"] = DEDUP_FIRST_AFTER_A_RETRY
        else:
            stats.duplicates += duplicates + attempt.duplicates
            stats.events_added += attempt.events_added
            stats.customers_created += attempt.customers_created
            return
    else:
        _dedup_first["chunks"] -= 1
    stored = _stored_message_ids([m[0] for m in fresh])
    unseen = [m for m in fresh if m[0] not in stored]
    stats.duplicates += duplicates + len(fresh) - len(unseen)
    _append(unseen, stats)


def _append(fresh: list[list[Any]], stats: ProcessStats, *, none_stored: bool = False) -> None:
    """Resolve the messages' subjects and append their events (ids not stored a moment ago,
    unique in the chunk). `none_stored`: none was checked; one stored raises _StoredBefore
    (the caller's savepoint undoes all of it)."""
    if not fresh:
        return
    at = now()
    writer = _writer(connection)
    write_time = writer.time
    by_text = writer.text_bounds
    parse = datetime.fromisoformat
    loads = protocol.loads
    subjects: list[Subject] = []
    at_subject: list[int] = []  # each message's subject, an index into `subjects`
    # The messages without traits of one (userId, anonymousId) share one subject: resolving
    # it again further on would give the same customer (its identifiers are all linked by
    # then), or, anonymous, the customer a later identify links its anonymous id to, which
    # the anonymous-links fallback below gives every message of that anonymous id anyway.
    plain: dict[tuple[str, str], int] = {}
    # Row positions (protocol.ROW_*): 0 messageId, 1 type, 2 event, 3 userId, 4 anonymousId,
    # 5 timestamp, 6 receivedAt, 7 properties (JSON), 8 context (JSON), 9 source slug.
    for m in fresh:
        if m[1] == "identify":
            at_subject.append(len(subjects))
            traits = loads(m[7])
            subjects.append(
                Subject(user_id=m[3], anonymous_id=m[4], traits=traits or {}, at=parse(m[5]))
            )
            continue
        key = (m[3], m[4])
        index = plain.get(key)
        if index is None:
            index = plain[key] = len(subjects)
            subjects.append(Subject(user_id=key[0], anonymous_id=key[1], at=parse(m[5])))
        at_subject.append(index)
    resolution = subjects_resolve(subjects, source="tracking", at=at)
    stats.customers_created += resolution.created
    resolved = resolution.customer_ids
    # Explicit ids (drawn from the sequence on PostgreSQL; after the largest on SQLite, whose
    # write transactions are serialised): the bus events carry their row's id.
    event_ids = allocate_ids(Event, len(fresh))
    rows: list[tuple[Any, ...]] = []
    span: dict[int, list[Any]] = {}
    linked = resolution.anonymous_links
    received: dict[str, Any] = {}  # a batch's messages share their receivedAt
    for event_id, m, index in zip(event_ids, fresh, at_subject, strict=True):
        customer_id = resolved[index]
        if customer_id is None and linked:
            # Anonymous when it came, its anonymous id linked by a later message of the chunk.
            customer_id = linked.get(m[4])
        stored_at = write_time(m[5])
        received_text = m[6]
        received_at = received.get(received_text)
        if received_at is None:
            received_at = received[received_text] = write_time(received_text)
        rows.append(
            (event_id, m[0], m[2], customer_id, m[4], stored_at, received_at, m[9], m[7], m[8])
        )
        if customer_id is not None:
            # The written texts where they are UTC (they sort as the times do); else the times.
            bound = stored_at if by_text else parse(m[5])
            bounds = span.get(customer_id)
            if bounds is None:
                span[customer_id] = [bound, bound]
            elif bound < bounds[0]:
                bounds[0] = bound
            elif bound > bounds[1]:
                bounds[1] = bound
    inserted = _events_write(rows, stored=writer.stored, none_stored=none_stored)
    added = len(rows) if inserted is None else len(inserted)
    stats.duplicates += len(rows) - added
    customers_seen_widen(span)
    stats.events_added += added
    texts = [m[5] for m in fresh]  # the ISO times, parsed for the bus events read
    if inserted is not None:
        texts = [text for row, text in zip(rows, texts, strict=True) if row[0] in inserted]
        rows = [row for row in rows if row[0] in inserted]
    bus.publish_many(bus.LazyEvents([row[2] for row in rows], _bus_event_builder(rows, texts)))


def _bus_event_builder(
    rows: list[tuple[Any, ...]], times: list[str]
) -> Callable[[int], bus.DomainEvent]:
    """The bus event of the `index`-th event row (`times`: the messages' ISO 8601 times),
    its properties parsed from their JSON text: built only for the events a subscriber
    reads (`bus.LazyEvents`)."""
    DomainEvent = bus.DomainEvent
    loads = protocol.loads
    parse = datetime.fromisoformat

    def build(index: int) -> bus.DomainEvent:
        row = rows[index]
        # Positional (type, occurred_at, customer_id, event_id, properties, source,
        # message_id): a frozen dataclass's keyword call costs a third more.
        return DomainEvent(
            row[2], parse(times[index]), row[3], row[0], loads(row[8]), row[7], row[1]
        )

    return build


# --- values as the database stores them ---------------------------------------------------

_UTC_SUFFIX = "+00:00"


@dataclass(frozen=True)
class _Writer:
    """How the event rows' times are written on this connection.

    - `time(text)`: a message's time (ISO 8601 text in UTC, as `protocol.check_message`
      writes it) as written. SQLite (stored in UTC, as Django writes it: `YYYY-MM-DD
      HH:MM:SS[.ffffff]`): the same characters with a space and without the offset (any
      other offset, in batches stored before the times were UTC, through the backend's own
      adaptation). PostgreSQL: the UTC text as it is (any other offset converted), for COPY
      (the server parses it into the same instant; several times cheaper for psycopg to
      write than a datetime). Elsewhere: the parsed datetime.
    - `stored`: the values are the database's stored form (SQLite in UTC; properties and
      context are JSON text everywhere): inserted as they are.
    - `text_bounds`: `time` gives UTC text, and first/last seen are widened on it: such
      texts sort as their times do (fixed-width fields; the fraction, when there is one,
      six digits, and a time without one sorts before it: '+' < '.')."""

    time: Any
    stored: bool
    text_bounds: bool


def _writer(conn: Any) -> _Writer:
    if conn.vendor == "postgresql":
        return _Writer(time=_utc_text, stored=False, text_bounds=True)
    if conn.vendor != "sqlite" or conn.timezone_name != "UTC":
        return _Writer(time=datetime.fromisoformat, stored=False, text_bounds=False)
    adapt = conn.ops.adapt_datetimefield_value

    def time(text: str) -> str:
        if _is_utc_text(text):
            return text[:10] + " " + text[11:-6]
        return str(adapt(datetime.fromisoformat(text)))

    return _Writer(time=time, stored=True, text_bounds=True)


def _is_utc_text(text: str) -> bool:
    """Whether a message's time is the text `protocol.check_message` writes: UTC's
    `isoformat()`, with or without a fraction of six digits."""
    return len(text) in (25, 32) and text[10] == "T" and text.endswith(_UTC_SUFFIX)


def _utc_text(text: str) -> str:
    """ISO 8601 text in UTC, as `protocol.check_message` writes it (other offsets, in
    batches stored before the times were UTC, converted)."""
    if _is_utc_text(text):
        return text
    return datetime.fromisoformat(text).astimezone(UTC).isoformat()


def _customer_of(value: str) -> int | None:
    for kind in (IdentityKind.EXTERNAL, IdentityKind.ANONYMOUS):
        cid = (
            Identity.objects.filter(kind=kind, value=value)
            .values_list("customer_id", flat=True)
            .first()
        )
        if cid is not None:
            return cid
    return None


def _process_alias(message: list[Any], stats: ProcessStats) -> None:
    """`alias(previousId → userId)` (a stored row): the two are one person. Two known
    customers are merged (the userId's customer survives); one known customer gains the
    other identifier."""
    if Event.objects.filter(message_id=message[protocol.ROW_MESSAGE_ID]).exists():
        return  # a retry: its merge (if any) already happened
    previous = protocol.loads(message[protocol.ROW_PROPERTIES])["previousId"]
    user = message[protocol.ROW_USER_ID]
    p, u = _customer_of(previous), _customer_of(user)
    if p is not None and u is not None and p != u:
        customer_merge(
            survivor=Customer.objects.get(pk=u),
            merged=Customer.objects.get(pk=p),
            reason=_("alias %(prev)s → %(user)s") % {"prev": previous, "user": user},
        )
        stats.merges += 1
    elif p is not None and u is None:
        Identity.objects.create(customer_id=p, kind=IdentityKind.EXTERNAL, value=user[:255])
    elif u is not None and p is None:
        subjects_resolve(
            [Subject(user_id=user, anonymous_id=previous)], source="tracking", at=now()
        )
    elif p is None and u is None:
        resolution = subjects_resolve(
            [Subject(user_id=user, anonymous_id=previous)], source="tracking", at=now()
        )
        stats.customers_created += resolution.created
