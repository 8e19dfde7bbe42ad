"""Data-subject requests: create, export (a zip of JSON and CSV per kind), erase (every
registered handler in one transaction, the erasure recorded without the data, the addresses
suppressed), reject; purpose-of-use notices. See docs/privacy.md."""

from __future__ import annotations

import csv
import io
import json
import secrets
import zipfile
from datetime import timedelta
from typing import Any

from auditlog.context import disable_auditlog
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.core import events as bus
from kizuna.core.audit import acting_as
from kizuna.core.personal_data import handlers
from kizuna.core.timeutil import local_date, now
from kizuna.customers.choices import ConsentPurpose
from kizuna.customers.models import Customer, Identity
from kizuna.messaging import services as messaging_services
from kizuna.messaging.choices import ChannelKind, SuppressionReason
from kizuna.messaging.models import LineContact
from kizuna.privacy.hashing import identifier_digest
from kizuna.privacy.models import (
    DataSubjectRequest,
    ErasedIdentifier,
    ErasureRecord,
    PurposeNotice,
    RequestKind,
    RequestLog,
    RequestStatus,
)


def _user(actor: Any) -> Any:
    return actor if getattr(actor, "is_authenticated", False) else None


def _log(request: DataSubjectRequest, action: str, actor: Any, message: str = "") -> None:
    RequestLog.objects.create(request=request, action=action, actor=_user(actor), message=message)


def due_days() -> int:
    return int(getattr(settings, "PRIVACY_REQUEST_DUE_DAYS", 30))


# --- requests -------------------------------------------------------------------------------


@transaction.atomic
def request_create(
    *,
    kind: str,
    customer: Customer | None,
    note: str = "",
    actor: AbstractBaseUser | None = None,
) -> DataSubjectRequest:
    """Open a request; it is due `PRIVACY_REQUEST_DUE_DAYS` (30) days from today."""
    errors: dict[str, list[str]] = {}
    if kind not in RequestKind.values:
        errors["kind"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(RequestKind.values)}]
    if customer is None:
        errors["customer"] = [_("Choose a customer.")]
    elif customer.merged_into_id is not None:
        errors["customer"] = [_("This profile was merged: open the request on the survivor.")]
    if len(note) > 500:
        errors["note"] = [_("At most 500 characters.")]
    if errors:
        raise ValidationError(errors)
    assert customer is not None
    with acting_as(actor):
        request = DataSubjectRequest.objects.create(
            kind=kind,
            customer=customer,
            note=note,
            due_on=local_date(now()) + timedelta(days=due_days()),
            requested_by=_user(actor),
        )
        _log(request, "created", actor)
    return request


def _open(request: DataSubjectRequest, kind: str) -> DataSubjectRequest:
    locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
    if locked.kind != kind:
        raise ValidationError({"kind": [_("This is not an %(kind)s request.") % {"kind": kind}]})
    if locked.status != RequestStatus.OPEN:
        raise ValidationError({"status": [_("This request is already closed.")]})
    return locked


@transaction.atomic
def request_reject(
    *, request: DataSubjectRequest, reason: str, actor: AbstractBaseUser | None = None
) -> DataSubjectRequest:
    if not reason.strip() or len(reason) > 500:
        raise ValidationError({"reason": [_("Give a reason of 1 to 500 characters.")]})
    locked = DataSubjectRequest.objects.select_for_update().get(pk=request.pk)
    if locked.status != RequestStatus.OPEN:
        raise ValidationError({"status": [_("This request is already closed.")]})
    locked.status = RequestStatus.REJECTED
    locked.completed_by = _user(actor)
    locked.completed_at = now()
    locked.save(update_fields=["status", "completed_by", "completed_at"])
    _log(locked, "rejected", actor, reason.strip())
    return locked


# --- export ---------------------------------------------------------------------------------


def _profile_ids(customer_id: int) -> list[int]:
    """The customer and every profile merged into it (transitively): one person."""
    ids = [customer_id]
    frontier = [customer_id]
    while frontier:
        frontier = list(
            Customer.objects.filter(merged_into_id__in=frontier)
            .exclude(pk__in=ids)
            .values_list("pk", flat=True)
        )
        ids.extend(frontier)
    return ids


def _csv_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return "" if value is None else value


def export_customer(customer_id: int) -> bytes:
    """Everything the registered handlers hold about the customer (and the profiles merged
    into it) as a zip: `<kind>.json` and `<kind>.csv` per kind and a `manifest.json`."""
    ids = _profile_ids(customer_id)
    buffer = io.BytesIO()
    manifest: dict[str, Any] = {
        "customer_id": customer_id,
        "profiles": ids,
        "exported_at": now().isoformat(),
        "kinds": {},
    }
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for handler in handlers():
            rows: list[dict[str, Any]] = []
            for cid in ids:
                rows.extend(dict(row) for row in handler.export(cid))
            manifest["kinds"][handler.name] = {"label": str(handler.label), "rows": len(rows)}
            archive.writestr(
                f"{handler.name}.json",
                json.dumps(rows, ensure_ascii=False, indent=2, sort_keys=True, default=str),
            )
            text = io.StringIO()
            columns: list[str] = []
            for row in rows:
                columns.extend(k for k in row if k not in columns)
            writer = csv.DictWriter(text, fieldnames=columns or ["id"])
            writer.writeheader()
            for row in rows:
                writer.writerow({k: _csv_value(v) for k, v in row.items()})
            archive.writestr(f"{handler.name}.csv", "\ufeff" + text.getvalue())
        archive.writestr("manifest.json", json.dumps(manifest, ensure_ascii=False, indent=2))
    return buffer.getvalue()


def request_export(*, request: DataSubjectRequest, actor: AbstractBaseUser | None = None) -> bytes:
    """Build the export of an open export request and complete it (the file is handed to
    the caller, not stored)."""
    with transaction.atomic():
        locked = _open(request, RequestKind.EXPORT)
        data = export_customer(locked.customer_id)
        locked.status = RequestStatus.COMPLETED
        locked.completed_by = _user(actor)
        locked.completed_at = now()
        locked.save(update_fields=["status", "completed_by", "completed_at"])
        _log(locked, "exported", actor, f"{len(data)} bytes")
    return data


# --- erasure --------------------------------------------------------------------------------


def identifiers(customer_ids: list[int]) -> list[tuple[str, str]]:
    """(kind, value) of every contact identifier the profiles hold."""
    found: set[tuple[str, str]] = set()
    for kind, value in Identity.objects.filter(customer_id__in=customer_ids).values_list(
        "kind", "value"
    ):
        found.add((kind, value))
    for email, phone in Customer.objects.filter(pk__in=customer_ids).values_list("email", "phone"):
        if email:
            found.add(("email", email))
        if phone:
            found.add(("phone", phone))
    for line_id in LineContact.objects.filter(customer_id__in=customer_ids).values_list(
        "line_user_id", flat=True
    ):
        found.add(("line", line_id))
    return sorted(found)


def is_erased_identifier(kind: str, value: str) -> bool:
    if not value:
        return False
    return ErasedIdentifier.objects.filter(
        kind=kind, digest=identifier_digest(kind, value)
    ).exists()


def _suppress(pairs: list[tuple[str, str]], actor: Any) -> None:
    for kind, value in pairs:
        if kind in ("email", "phone", "line"):
            ErasedIdentifier.objects.get_or_create(kind=kind, digest=identifier_digest(kind, value))
        channel = {"email": ChannelKind.EMAIL, "line": ChannelKind.LINE}.get(kind)
        if channel is not None:
            messaging_services.suppression_add(
                channel_kind=channel,
                address=value,
                reason=SuppressionReason.MANUAL,
                note="erasure",
                actor=actor,
            )


def erase_customer(
    *,
    customer: Customer,
    actor: AbstractBaseUser | None = None,
    request: DataSubjectRequest | None = None,
) -> ErasureRecord:
    """Erase the customer (and the profiles merged into it) through every registered handler
    in one transaction, with the audit log off (its entries would copy the data); suppress
    the addresses by hash; record what was erased. Publishes `customer.erased`."""
    if customer.merged_into_id is not None:
        raise ValidationError(
            {"customer": [_("This profile was merged: erase the survivor instead.")]}
        )
    pseudonym = "erased-" + secrets.token_hex(8)
    with transaction.atomic():
        ids = _profile_ids(customer.pk)
        Customer.objects.select_for_update().filter(pk__in=ids).count()
        pairs = identifiers(ids)
        _suppress(pairs, actor)
        kinds: dict[str, int] = {}
        with disable_auditlog():
            for handler in handlers():
                kinds[handler.name] = sum(
                    int(handler.erase(cid, pseudonym=pseudonym)) for cid in ids
                )
        record = ErasureRecord.objects.create(
            customer_ref=customer.pk,
            request=request,
            pseudonym=pseudonym,
            kinds=kinds,
            customer_ids=ids,
            erased_by=_user(actor),
        )
        bus.publish(
            bus.DomainEvent(
                type="customer.erased",
                occurred_at=record.erased_at,
                customer_id=customer.pk,
                source="privacy",
                properties={"profiles": ids},
            )
        )
    return record


def request_erase(
    *, request: DataSubjectRequest, actor: AbstractBaseUser | None = None
) -> ErasureRecord:
    with transaction.atomic():
        locked = _open(request, RequestKind.ERASE)
        record = erase_customer(customer=locked.customer, actor=actor, request=locked)
        locked.status = RequestStatus.COMPLETED
        locked.completed_by = _user(actor)
        locked.completed_at = now()
        locked.save(update_fields=["status", "completed_by", "completed_at"])
        total = sum(record.kinds.values())
        _log(locked, "erased", actor, f"{total} rows in {len(record.kinds)} kinds")
    return record


# --- purpose-of-use notices -----------------------------------------------------------------


@transaction.atomic
def notice_publish(
    *,
    purpose: str,
    title: str,
    text: str,
    text_en: str = "",
    effective_from: Any = None,
    actor: AbstractBaseUser | None = None,
) -> PurposeNotice:
    """Add the next version of a purpose's notice (versions are never edited)."""
    errors: dict[str, list[str]] = {}
    if purpose not in ConsentPurpose.values:
        errors["purpose"] = [_("Choose one of: %(c)s.") % {"c": ", ".join(ConsentPurpose.values)}]
    if not title.strip() or len(title) > 200:
        errors["title"] = [_("A title of 1 to 200 characters is required.")]
    if not text.strip():
        errors["text"] = [_("The notice text is required.")]
    if len(text) > 20000 or len(text_en) > 20000:
        errors["text"] = [_("At most 20000 characters.")]
    if errors:
        raise ValidationError(errors)
    latest = (
        PurposeNotice.objects.select_for_update()
        .filter(purpose=purpose)
        .order_by("-version")
        .first()
    )
    with acting_as(actor):
        return PurposeNotice.objects.create(
            purpose=purpose,
            version=(latest.version + 1) if latest else 1,
            title=title.strip(),
            text=text,
            text_en=text_en,
            effective_from=effective_from or now(),
            created_by=_user(actor),
        )
