"""Registry of a customer's personal data, for data-subject export and erasure (issue 11).

Every app that stores a customer's personal data (names, contact details, addresses, free
text, answers, identifiers, rendered messages, event properties) declares it here, so that a
data-subject request (APPI / GDPR, see ``docs/privacy.md``) finds and handles all of it.

Contract
--------

Add a module ``kizuna/<app>/personal_data.py`` to your app that calls :func:`register` at
import time, once per model or data kind::

    from kizuna.core.personal_data import register

    def _export(customer_id: int) -> Iterable[dict[str, Any]]:
        for row in Answer.objects.filter(customer_id=customer_id).order_by("pk"):
            yield {"id": row.pk, "survey": row.survey_id, "text": row.text,
                   "created_at": row.created_at.isoformat()}

    def _erase(customer_id: int, *, pseudonym: str) -> int:
        return Answer.objects.filter(customer_id=customer_id).update(text="")

    register("surveys.answer", export=_export, erase=_erase, label=_("Survey answers"))

* ``name``: unique, stable, ``"<app_label>.<kind>"`` (it names the file in the export zip and
  the row in an erasure record, so never change it).
* ``export(customer_id) -> Iterable[dict]``: every personal item of that kind for the
  customer, as JSON-serialisable dicts with flat, scalar values where possible (strings,
  numbers, booleans, None; dates as ISO strings; nested dicts/lists are allowed and are
  JSON-encoded in the CSV). Include the row id and timestamps. Read only.
* ``erase(customer_id, *, pseudonym) -> int``: remove or *irreversibly* pseudonymise the
  personal fields and free text of that kind for the customer; return the number of rows
  touched (deleted or updated). Keep rows that aggregates need (amounts, counts, ledger sums,
  delivery statistics): blank their text, drop JSON properties, replace identifiers with
  ``pseudonym`` (an opaque token such as ``"erased-3f9a…"`` that carries no personal data) or
  delete the row when nothing depends on it. Must be idempotent (a second call is harmless)
  and must not raise if the customer has no data of that kind. It runs inside the erasure's
  transaction; do not commit or open connections of your own, and do not send messages.
* ``label``: human name (lazy translation) shown in the console and the export's manifest.
* ``order``: erase order, lower first (default 100). The customer profile itself
  (``customers.profile``) erases last (order 1000), so handlers may still read it.

Discovery: :func:`handlers` imports every installed app's ``personal_data`` module once
(``django.utils.module_loading.autodiscover_modules``), so registering needs nothing beyond
the module. Tests that want a clean registry use :func:`override_registry`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.utils.functional import Promise

ExportFn = Callable[[int], Iterable[dict[str, Any]]]
EraseFn = Callable[..., int]


@dataclass(frozen=True)
class PersonalDataHandler:
    name: str
    export: ExportFn
    erase: EraseFn
    label: str | Promise
    order: int = 100


_registry: dict[str, PersonalDataHandler] = {}
_lock = threading.Lock()
_discovered = False


def register(
    name: str,
    *,
    export: ExportFn,
    erase: EraseFn,
    label: str | Promise | None = None,
    order: int = 100,
) -> PersonalDataHandler:
    """Declare one kind of personal data (see the module docstring for the contract)."""
    if "." not in name:
        raise ValueError(f"personal data kind {name!r} must be '<app_label>.<kind>'")
    handler = PersonalDataHandler(
        name=name, export=export, erase=erase, label=label or name, order=order
    )
    with _lock:
        # Re-registering a name (a module imported again) replaces the earlier handler.
        _registry[name] = handler
    return handler


def autodiscover() -> None:
    """Import ``<app>.personal_data`` for every installed app (once)."""
    global _discovered
    if _discovered:
        return
    from django.utils.module_loading import autodiscover_modules

    autodiscover_modules("personal_data")
    _discovered = True


def handlers() -> list[PersonalDataHandler]:
    """All registered kinds, in erase order (then by name)."""
    autodiscover()
    with _lock:
        items = list(_registry.values())
    return sorted(items, key=lambda h: (h.order, h.name))


def get_handler(name: str) -> PersonalDataHandler:
    for handler in handlers():
        if handler.name == name:
            return handler
    raise KeyError(name)


@contextmanager
def override_registry(*extra: PersonalDataHandler, only: bool = False) -> Iterator[None]:
    """Temporarily add handlers (or, with ``only=True``, use just these). For tests."""
    global _registry
    autodiscover()
    saved = dict(_registry)
    try:
        if only:
            _registry = {}
        for handler in extra:
            _registry[handler.name] = handler
        yield
    finally:
        _registry = saved


def row_dict(obj: Any, *, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """A model instance's concrete fields as JSON-friendly values (foreign keys as ids,
    dates as ISO strings): a convenience for `export` callables."""
    import datetime
    import decimal
    import uuid

    skip = set(exclude)
    out: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        if field.name in skip or field.attname in skip or field.generated:
            continue  # (generated: derived by the database from the other fields)
        value = getattr(obj, field.attname)
        if isinstance(value, datetime.datetime | datetime.date | datetime.time):
            value = value.isoformat()
        elif isinstance(value, decimal.Decimal | uuid.UUID):
            value = str(value)
        elif isinstance(value, bytes | memoryview):
            continue
        out[field.attname] = value
    return out
