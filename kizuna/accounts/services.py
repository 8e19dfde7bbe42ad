"""Writes of accounts, contacts, pipelines and deals, activities and service levels.

Every refusal is a `ValidationError` keyed by the field at fault, raised before anything
is written. Writes attribute the audit log to `actor`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Count, Q
from django.utils.translation import gettext as _

from kizuna.accounts.models import (
    Account,
    AccountContact,
    Activity,
    ActivityKind,
    CareReason,
    ContactRole,
    CustomerCare,
    Deal,
    Outcome,
    Pipeline,
    ServiceLevel,
    ServiceLevelRule,
    Stage,
)
from kizuna.analytics.models import CustomerScore
from kizuna.core.audit import acting_as
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer

Errors = dict[str, list[str]]
MAX_AMOUNT_YEN = 10**12
MAX_DEPTH = 20  # of an account hierarchy


def _add(errors: Errors, field: str, message: str) -> None:
    errors.setdefault(field, []).append(message)


def _raise(errors: Errors) -> None:
    if errors:
        raise ValidationError(errors)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


MAX_ID = 2**62  # larger ids cannot exist (and overflow the database's integer columns)


def _id(value: Any) -> int | None:
    """`value` as a row id, or None when it cannot be one."""
    text = str(value)
    if not text.isdigit() or len(text) > 18:
        return None
    number = int(text)
    return number if 0 < number < MAX_ID else None


def _text(errors: Errors, data: dict[str, Any], field: str, *, limit: int, required: bool) -> str:
    value = str(data.get(field) or "").strip()
    if required and not value:
        _add(errors, field, _("This field is required."))
    elif len(value) > limit:
        _add(errors, field, _("At most %(n)d characters.") % {"n": limit})
    return value


def _unknown(errors: Errors, data: dict[str, Any], allowed: set[str]) -> None:
    for key in sorted(set(data) - allowed):
        _add(errors, key, _("Unknown field %(f)s.") % {"f": key})


def _active_staff(errors: Errors, field: str, user: Any) -> AbstractBaseUser | None:
    """`user` (a user or a user id) if it is an active staff user; an error otherwise."""
    if user is None or user == "":
        return None
    if not isinstance(user, AbstractBaseUser):
        pk = _id(user)
        found = get_user_model().objects.filter(pk=pk).first() if pk else None
        if found is None:
            _add(errors, field, _("No staff user with id %(v)s.") % {"v": user})
            return None
        user = found
    if not getattr(user, "is_active", False):
        _add(
            errors,
            field,
            _("%(user)s is deactivated: choose an active staff member.")
            % {"user": user.get_username()},
        )
        return None
    if not getattr(user, "is_staff", False):
        _add(errors, field, _("%(user)s is not a staff user.") % {"user": user.get_username()})
        return None
    return user


# --- accounts ------------------------------------------------------------------------------

ACCOUNT_FIELDS = {"name", "domain", "parent", "owner", "named", "follow_up_days", "notes"}


def _check_parent(errors: Errors, account: Account | None, parent: Any) -> Account | None:
    if parent in (None, ""):
        return None
    if not isinstance(parent, Account):
        pk = _id(parent)
        found = Account.objects.filter(pk=pk).first() if pk else None
        if found is None:
            _add(errors, "parent", _("No account with id %(v)s.") % {"v": parent})
            return None
        parent = found
    if account is not None and account.pk is not None:
        # Walk up from the new parent: meeting the account itself would close a cycle.
        seen: set[int] = set()
        node: Account | None = parent
        depth = 0
        while node is not None:
            if node.pk == account.pk:
                _add(
                    errors,
                    "parent",
                    _(
                        "%(parent)s is %(account)s itself or one of its subsidiaries: "
                        "an account hierarchy cannot have a cycle."
                    )
                    % {"parent": parent.name, "account": account.name},
                )
                return None
            if node.pk in seen or depth > MAX_DEPTH:
                break
            seen.add(node.pk)
            depth += 1
            node = Account.objects.filter(pk=node.parent_id).first() if node.parent_id else None
    if depth_of(parent) >= MAX_DEPTH:
        _add(errors, "parent", _("An account hierarchy has at most 20 levels."))
        return None
    return parent


def depth_of(account: Account) -> int:
    depth, parent_id = 0, account.parent_id
    while parent_id is not None and depth <= MAX_DEPTH:
        parent_id = Account.objects.filter(pk=parent_id).values_list("parent_id", flat=True).first()
        depth += 1
    return depth


def _account_values(errors: Errors, data: dict[str, Any], account: Account | None) -> dict:
    values: dict[str, Any] = {}
    if "name" in data or account is None:
        values["name"] = _text(errors, data, "name", limit=200, required=True)
    if "domain" in data:
        values["domain"] = _text(errors, data, "domain", limit=200, required=False)
    if "notes" in data:
        values["notes"] = _text(errors, data, "notes", limit=20_000, required=False)
    if "named" in data:
        values["named"] = bool(data["named"])
    if "follow_up_days" in data:
        days = data["follow_up_days"]
        if days in (None, ""):
            values["follow_up_days"] = None
        elif not _whole(days) or not 1 <= days <= 366:
            _add(errors, "follow_up_days", _("A follow-up cadence is 1 to 366 days."))
        else:
            values["follow_up_days"] = days
    if "owner" in data:
        values["owner"] = _active_staff(errors, "owner", data["owner"])
    if "parent" in data:
        values["parent"] = _check_parent(errors, account, data["parent"])
    return values


@transaction.atomic
def account_create(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Account:
    errors: Errors = {}
    _unknown(errors, data, ACCOUNT_FIELDS)
    values = _account_values(errors, data, None)
    _raise(errors)
    with acting_as(actor):
        account = Account.objects.create(**values)
    return account


@transaction.atomic
def account_update(
    *, account: Account, data: dict[str, Any], actor: AbstractBaseUser | None = None
) -> Account:
    account = Account.objects.select_for_update().get(pk=account.pk)
    errors: Errors = {}
    _unknown(errors, data, ACCOUNT_FIELDS)
    values = _account_values(errors, data, account)
    _raise(errors)
    for key, value in values.items():
        setattr(account, key, value)
    if "follow_up_days" in values:
        account.next_follow_up_at = _next(account.last_contact_at, account.follow_up_days)
    with acting_as(actor):
        account.save()
    return account


@transaction.atomic
def contact_add(
    *,
    account: Account,
    customer: Customer,
    role: str = ContactRole.OTHER,
    title: str = "",
    actor: AbstractBaseUser | None = None,
) -> AccountContact:
    errors: Errors = {}
    if role not in ContactRole.values:
        _add(errors, "role", _("Choose one of: %(c)s.") % {"c": ", ".join(ContactRole.values)})
    if len(title) > 100:
        _add(errors, "title", _("At most %(n)d characters.") % {"n": 100})
    if customer.merged_into_id is not None:
        _add(errors, "customer", _("This customer was merged into another profile."))
    if AccountContact.objects.filter(account=account, customer=customer).exists():
        _add(errors, "customer", _("This customer is already a contact of the account."))
    _raise(errors)
    with acting_as(actor):
        return AccountContact.objects.create(
            account=account, customer=customer, role=role, title=title.strip()
        )


@transaction.atomic
def contact_remove(*, contact: AccountContact, actor: AbstractBaseUser | None = None) -> None:
    with acting_as(actor):
        contact.delete()


# --- pipelines and deals -------------------------------------------------------------------


def _pipeline_errors(
    name: str, stages: list[dict[str, Any]], *, other_than: int | None = None
) -> tuple[str, Errors]:
    """The name (stripped) and what is wrong with a pipeline's name and stages."""
    errors: Errors = {}
    name = (name or "").strip()
    if not name or len(name) > 100:
        _add(errors, "name", _("A name of 1 to 100 characters is required."))
    elif Pipeline.objects.filter(name=name).exclude(pk=other_than or 0).exists():
        _add(errors, "name", _("A pipeline with this name already exists."))
    if not isinstance(stages, list) or not stages:
        _add(errors, "stages", _("A pipeline needs stages."))
        return name, errors
    names: set[str] = set()
    for i, stage in enumerate(stages):
        prefix = f"stages[{i}]"
        stage_name = str(stage.get("name") or "").strip()
        if not stage_name or len(stage_name) > 100:
            _add(errors, f"{prefix}.name", _("A name of 1 to 100 characters is required."))
        elif stage_name in names:
            _add(errors, f"{prefix}.name", _("Two stages cannot have the same name."))
        names.add(stage_name)
        probability: Any = stage.get("probability")
        if not _whole(probability) or not 0 <= probability <= 100:
            _add(
                errors,
                f"{prefix}.probability",
                _("A probability is a whole percentage from 0 to 100."),
            )
        if stage.get("outcome", Outcome.OPEN) not in Outcome.values:
            _add(
                errors,
                f"{prefix}.outcome",
                _("Choose one of: %(c)s.") % {"c": ", ".join(Outcome.values)},
            )
    outcomes = [s.get("outcome", Outcome.OPEN) for s in stages]
    if Outcome.WON not in outcomes or Outcome.LOST not in outcomes:
        _add(errors, "stages", _("A pipeline needs one won and one lost stage."))
    return name, errors


@transaction.atomic
def pipeline_create(
    *, name: str, stages: list[dict[str, Any]], actor: AbstractBaseUser | None = None
) -> Pipeline:
    """A pipeline with its ordered stages, each `{"name", "probability" (0-100),
    "outcome" ("open", "won", "lost")}`. It needs one won and one lost stage."""
    name, errors = _pipeline_errors(name, stages)
    _raise(errors)
    with acting_as(actor):
        pipeline = Pipeline.objects.create(name=name, position=Pipeline.objects.count())
        Stage.objects.bulk_create(
            Stage(
                pipeline=pipeline,
                name=str(s["name"]).strip(),
                position=i,
                probability=s["probability"],
                outcome=s.get("outcome", Outcome.OPEN),
            )
            for i, s in enumerate(stages)
        )
    return pipeline


@transaction.atomic
def pipeline_update(
    *,
    pipeline: Pipeline,
    name: str,
    stages: list[dict[str, Any]],
    actor: AbstractBaseUser | None = None,
) -> Pipeline:
    """Rename a pipeline and replace its stages with `stages` (as for `pipeline_create`), all
    or nothing. A stage keeps its deals when its name stays: its probability and position
    follow the list (the forecast follows at once). A stage that still holds deals cannot be
    left out (renamed) or change its outcome: move its deals first."""
    locked = Pipeline.objects.select_for_update().get(pk=pipeline.pk)
    name, errors = _pipeline_errors(name, stages, other_than=locked.pk)
    _raise(errors)
    current = {stage.name: stage for stage in Stage.objects.filter(pipeline=locked)}
    deals = {
        row["stage__name"]: row["n"]
        for row in Deal.objects.filter(stage__pipeline=locked)
        .values("stage__name")
        .annotate(n=Count("id"))
    }
    wanted = {str(s["name"]).strip(): s for s in stages}
    for stage_name, stage in current.items():
        held = deals.get(stage_name, 0)
        if not held:
            continue
        if stage_name not in wanted:
            _add(
                errors,
                "stages",
                _("%(stage)s still holds %(n)d deals: move them before removing it.")
                % {"stage": stage_name, "n": held},
            )
        elif wanted[stage_name].get("outcome", Outcome.OPEN) != stage.outcome:
            _add(
                errors,
                "stages",
                _("%(stage)s holds %(n)d deals: its outcome cannot change.")
                % {"stage": stage_name, "n": held},
            )
    _raise(errors)
    with acting_as(actor):
        Stage.objects.filter(pipeline=locked).exclude(name__in=list(wanted)).delete()
        for i, (stage_name, spec) in enumerate(wanted.items()):
            Stage.objects.update_or_create(
                pipeline=locked,
                name=stage_name,
                defaults={
                    "position": i,
                    "probability": spec["probability"],
                    "outcome": spec.get("outcome", Outcome.OPEN),
                },
            )
        if locked.name != name:
            locked.name = name
            locked.save(update_fields=["name"])
    return locked


DEAL_FIELDS = {"title", "account", "contact", "stage", "amount_yen", "expected_close", "owner"}


def _lookup(errors: Errors, field: str, model: type, value: Any) -> Any:
    if value in (None, ""):
        return None
    if isinstance(value, model):
        return value
    pk = _id(value)
    found = model.objects.filter(pk=pk).first() if pk else None  # type: ignore[attr-defined]
    if found is None:
        _add(errors, field, _("No %(what)s with id %(v)s.") % {"what": field, "v": value})
    return found


def _deal_values(errors: Errors, data: dict[str, Any], deal: Deal | None) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "title" in data or deal is None:
        values["title"] = _text(errors, data, "title", limit=200, required=True)
    if "account" in data:
        values["account"] = _lookup(errors, "account", Account, data["account"])
    if "contact" in data:
        values["contact"] = _lookup(errors, "contact", Customer, data["contact"])
    if "amount_yen" in data:
        amount = data["amount_yen"]
        if not _whole(amount) or not 0 <= amount <= MAX_AMOUNT_YEN:
            _add(errors, "amount_yen", _("An amount is a whole, non-negative number of yen."))
        else:
            values["amount_yen"] = amount
    if "expected_close" in data:
        close = data["expected_close"]
        if close in (None, ""):
            values["expected_close"] = None
        elif isinstance(close, date) and not isinstance(close, datetime):
            values["expected_close"] = close
        else:
            try:
                values["expected_close"] = date.fromisoformat(str(close))
            except ValueError:
                _add(errors, "expected_close", _("A date as YYYY-MM-DD."))
    if "owner" in data:
        values["owner"] = _active_staff(errors, "owner", data["owner"])
    return values


@transaction.atomic
def deal_create(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Deal:
    """A new deal in `stage` (an open stage; its pipeline is the deal's), owned by `owner`
    (the actor when not given)."""
    errors: Errors = {}
    _unknown(errors, data, DEAL_FIELDS)
    values = _deal_values(errors, data, None)
    stage = _lookup(errors, "stage", Stage, data.get("stage"))
    if stage is None and "stage" not in errors:
        _add(errors, "stage", _("Choose the deal's stage."))
    elif stage is not None and stage.outcome != Outcome.OPEN:
        _add(errors, "stage", _("A new deal starts in an open stage."))
    if not values.get("account") and not values.get("contact"):
        _add(errors, "account", _("A deal needs an account or a contact."))
    if "owner" not in data and actor is not None:
        values["owner"] = _active_staff(errors, "owner", actor)
    _raise(errors)
    with acting_as(actor):
        return Deal.objects.create(
            **values, pipeline_id=stage.pipeline_id, stage=stage, stage_changed_at=now()
        )


@transaction.atomic
def deal_update(*, deal: Deal, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Deal:
    deal = Deal.objects.select_for_update().get(pk=deal.pk)
    errors: Errors = {}
    _unknown(errors, data, DEAL_FIELDS - {"stage"})
    values = _deal_values(errors, data, deal)
    _raise(errors)
    for key, value in values.items():
        setattr(deal, key, value)
    if not deal.account_id and not deal.contact_id:
        raise ValidationError({"account": [_("A deal needs an account or a contact.")]})
    with acting_as(actor):
        deal.save()
    return deal


@transaction.atomic
def deal_move(
    *,
    deal: Deal,
    stage: Stage,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> Deal:
    """Move a deal to another stage of its pipeline. A won or lost stage closes the deal
    (a lost deal needs its reason); an open stage reopens a closed one."""
    deal = Deal.objects.select_for_update().select_related("pipeline").get(pk=deal.pk)
    if stage.pipeline_id != deal.pipeline_id:
        raise ValidationError(
            {
                "stage": [
                    _(
                        "The stage %(stage)s belongs to the pipeline %(other)s, but this deal "
                        "is in the pipeline %(pipeline)s: choose one of its stages."
                    )
                    % {
                        "stage": stage.name,
                        "other": stage.pipeline.name,
                        "pipeline": deal.pipeline.name,
                    }
                ]
            }
        )
    reason = (reason or "").strip()
    if len(reason) > 200:
        raise ValidationError({"reason": [_("At most %(n)d characters.") % {"n": 200}]})
    if stage.outcome == Outcome.LOST and not reason:
        raise ValidationError({"reason": [_("Give the reason the deal was lost.")]})
    if deal.stage_id == stage.pk and not reason:
        return deal
    with acting_as(actor):
        deal.stage = stage
        deal.stage_changed_at = now()
        deal.status = stage.outcome
        if stage.outcome == Outcome.OPEN:
            deal.closed_at, deal.close_reason = None, ""
        else:
            deal.closed_at, deal.close_reason = now(), reason
        deal.save(
            update_fields=[
                "stage",
                "stage_changed_at",
                "status",
                "closed_at",
                "close_reason",
                "updated_at",
            ]
        )
    return deal


@transaction.atomic
def deals_move(
    *,
    deals: list[Deal],
    stage: Stage,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> list[Deal]:
    """Move several deals to one stage (the board's move form): all of them or, when any
    is refused, none; the refusal names the deal."""
    moved = []
    for deal in sorted(deals, key=lambda d: d.pk):  # a fixed lock order
        try:
            moved.append(deal_move(deal=deal, stage=stage, reason=reason, actor=actor))
        except ValidationError as exc:
            raise ValidationError(
                {
                    field: [f"{deal.title}: {message}" for message in messages]
                    for field, messages in exc.message_dict.items()
                }
            ) from exc
    return moved


def deal_close(
    *, deal: Deal, won: bool, reason: str = "", actor: AbstractBaseUser | None = None
) -> Deal:
    """Move the deal to its pipeline's won (or lost) stage."""
    outcome = Outcome.WON if won else Outcome.LOST
    stage = Stage.objects.filter(pipeline_id=deal.pipeline_id, outcome=outcome).first()
    if stage is None:
        raise ValidationError({"stage": [_("This pipeline has no %(o)s stage.") % {"o": outcome}]})
    return deal_move(deal=deal, stage=stage, reason=reason, actor=actor)


# --- activities ----------------------------------------------------------------------------


def _next(last: datetime | None, days: int | None) -> datetime | None:
    if days is None:
        return None
    return (last or now()) + timedelta(days=days)


def _parse_moment(errors: Errors, field: str, value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            _add(errors, field, _("A date and time (ISO 8601)."))
            return None
    if moment.tzinfo is None:
        from kizuna.core.timeutil import JST

        moment = moment.replace(tzinfo=JST)
    return moment


ACTIVITY_FIELDS = {
    "kind",
    "subject",
    "body",
    "account",
    "customer",
    "deal",
    "assigned_to",
    "occurred_at",
    "due_at",
    "remind_at",
}


@transaction.atomic
def activity_log(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> Activity:
    """Log a call, meeting or note, or create a task (with a due date, an optional reminder
    and an assignee: the actor when not given). A call, meeting or note on a contact or an
    account counts as contact for the follow-up cadence."""
    errors: Errors = {}
    _unknown(errors, data, ACTIVITY_FIELDS)
    kind: Any = data.get("kind")
    if kind not in ActivityKind.values:
        _add(errors, "kind", _("Choose one of: %(c)s.") % {"c": ", ".join(ActivityKind.values)})
    subject = _text(errors, data, "subject", limit=200, required=True)
    body = _text(errors, data, "body", limit=20_000, required=False)
    account = _lookup(errors, "account", Account, data.get("account"))
    customer = _lookup(errors, "customer", Customer, data.get("customer"))
    deal = _lookup(errors, "deal", Deal, data.get("deal"))
    if not (account or customer or deal) and not {"account", "customer", "deal"} & set(errors):
        _add(errors, "account", _("Log it on a contact, an account or a deal."))
    if deal is not None and account is None:
        account = deal.account
    occurred_at = _parse_moment(errors, "occurred_at", data.get("occurred_at")) or now()
    due_at = _parse_moment(errors, "due_at", data.get("due_at"))
    remind_at = _parse_moment(errors, "remind_at", data.get("remind_at"))
    assigned_to: Any = None
    if kind == ActivityKind.TASK:
        if due_at is None and "due_at" not in errors:
            _add(errors, "due_at", _("A task needs a due date."))
        if remind_at is not None and due_at is not None and remind_at > due_at:
            _add(errors, "remind_at", _("The reminder must come before the due date."))
        assignee = data.get("assigned_to") or actor
        assigned_to = _active_staff(errors, "assigned_to", assignee)
        if assigned_to is None and "assigned_to" not in errors:
            _add(errors, "assigned_to", _("Assign the task to a staff member."))
    elif data.get("assigned_to") or remind_at or due_at:
        _add(errors, "kind", _("Only a task has an assignee, a due date and a reminder."))
    _raise(errors)
    with acting_as(actor):
        activity = Activity.objects.create(
            kind=kind,
            subject=subject,
            body=body,
            account=account,
            customer=customer,
            deal=deal,
            assigned_to=assigned_to,
            occurred_at=occurred_at,
            due_at=due_at,
            remind_at=remind_at,
            created_by=actor if isinstance(actor, AbstractBaseUser) else None,  # type: ignore[misc]
        )
        if kind != ActivityKind.TASK:
            _contacted(account=account, customer=customer, at=occurred_at)
    return activity


def _contacted(*, account: Account | None, customer: Customer | None, at: datetime) -> None:
    if account is not None:
        locked = Account.objects.select_for_update().get(pk=account.pk)
        if locked.last_contact_at is None or at > locked.last_contact_at:
            locked.last_contact_at = at
            locked.next_follow_up_at = _next(at, locked.follow_up_days)
            locked.save(update_fields=["last_contact_at", "next_follow_up_at", "updated_at"])
    if customer is not None:
        care = CustomerCare.objects.select_for_update().filter(customer=customer).first()
        if care is not None and (care.last_contact_at is None or at > care.last_contact_at):
            care.last_contact_at = at
            care.next_follow_up_at = (
                _next(at, care.cadence_days) if care.level == ServiceLevel.HIGH else None
            )
            care.save(update_fields=["last_contact_at", "next_follow_up_at"])


@transaction.atomic
def task_complete(*, activity: Activity, actor: AbstractBaseUser | None = None) -> Activity:
    activity = Activity.objects.select_for_update().get(pk=activity.pk)
    if activity.kind != ActivityKind.TASK:
        raise ValidationError({"kind": [_("Only a task can be completed.")]})
    if activity.done_at is None:
        with acting_as(actor):
            activity.done_at = now()
            activity.save(update_fields=["done_at"])
    return activity


def reminders_send(*, at: datetime | None = None, limit: int = 500) -> int:
    """Email each assignee the tasks whose reminder time has come (once per task)."""
    at = at or now()
    sent = 0
    due = (
        Activity.objects.filter(
            kind=ActivityKind.TASK,
            done_at__isnull=True,
            reminded_at__isnull=True,
            remind_at__lte=at,
        )
        .select_related("assigned_to")
        .order_by("remind_at", "id")[:limit]
    )
    for task in due:
        with transaction.atomic():
            claimed = Activity.objects.filter(pk=task.pk, reminded_at__isnull=True).update(
                reminded_at=at
            )
            if not claimed:
                continue
            email = getattr(task.assigned_to, "email", "")
            if email:
                send_mail(
                    subject=_("Reminder: %(s)s") % {"s": task.subject},
                    message=_("Due %(due)s: %(s)s")
                    % {"due": f"{task.due_at:%Y-%m-%d %H:%M}", "s": task.subject},
                    from_email=None,
                    recipient_list=[email],
                )
            sent += 1
    return sent


# --- service levels ------------------------------------------------------------------------


def rule_current() -> ServiceLevelRule:
    rule = ServiceLevelRule.objects.order_by("pk").first()
    return rule or ServiceLevelRule.objects.create()


@transaction.atomic
def rule_update(*, data: dict[str, Any], actor: AbstractBaseUser | None = None) -> ServiceLevelRule:
    errors: Errors = {}
    _unknown(
        errors, data, {"top_clv_percent", "include_named_accounts", "cadence_days", "default_owner"}
    )
    rule = rule_current()
    if "top_clv_percent" in data:
        try:
            pct = Decimal(str(data["top_clv_percent"]))
        except InvalidOperation:
            pct = Decimal(-1)
        if not Decimal(0) <= pct <= Decimal(100):
            _add(errors, "top_clv_percent", _("A share from 0 to 100 percent."))
        else:
            rule.top_clv_percent = pct
    if "cadence_days" in data:
        days = data["cadence_days"]
        if not _whole(days) or not 1 <= days <= 366:
            _add(errors, "cadence_days", _("A follow-up cadence is 1 to 366 days."))
        else:
            rule.cadence_days = days
    if "include_named_accounts" in data:
        rule.include_named_accounts = bool(data["include_named_accounts"])
    if "default_owner" in data:
        rule.default_owner = _active_staff(errors, "default_owner", data["default_owner"])  # type: ignore[assignment]
    _raise(errors)
    with acting_as(actor):
        rule.save()
    return rule


@dataclass(frozen=True)
class ServiceLevelResult:
    high: int
    entered: int
    left: int


@transaction.atomic
def service_levels_apply(*, at: datetime | None = None) -> ServiceLevelResult:
    """Apply the rule: the top `top_clv_percent` of scored customers by CLV, and (if the rule
    says so) the contacts of named accounts, are high-touch; everyone else who was is now
    low-touch. A high-touch customer keeps their owner, else gets the owner of their
    (named) account, else the rule's default owner. P(alive) is snapshotted each time so a
    fall between two evaluations shows as a risk."""
    at = at or now()
    rule = rule_current()
    scored = CustomerScore.objects.count()
    top_n = math.ceil(scored * float(rule.top_clv_percent) / 100) if scored else 0
    top = list(
        CustomerScore.objects.order_by("-clv_minor", "customer_id").values_list(
            "customer_id", flat=True
        )[:top_n]
    )
    reasons: dict[int, str] = {cid: CareReason.TOP_CLV for cid in top}
    owners: dict[int, int | None] = {}
    links = AccountContact.objects.filter(account__owner__isnull=False).values_list(
        "customer_id", "account__owner_id", "account__named"
    )
    for customer_id, owner_id, named in links.order_by("account_id"):
        owners.setdefault(customer_id, owner_id)
        if named and rule.include_named_accounts:
            reasons.setdefault(customer_id, CareReason.NAMED_ACCOUNT)
    if rule.include_named_accounts:
        for customer_id in AccountContact.objects.filter(account__named=True).values_list(
            "customer_id", flat=True
        ):
            reasons.setdefault(customer_id, CareReason.NAMED_ACCOUNT)
    p_alive = dict(
        CustomerScore.objects.filter(customer_id__in=list(reasons)).values_list(
            "customer_id", "p_alive"
        )
    )
    existing = {
        c.customer_id: c for c in CustomerCare.objects.filter(customer_id__in=list(reasons))
    }
    to_create, to_update = [], []
    entered = 0
    for customer_id, reason in reasons.items():
        care = existing.get(customer_id)
        if care is None:
            care = CustomerCare(customer_id=customer_id)
            to_create.append(care)
        else:
            to_update.append(care)
        if care.level != ServiceLevel.HIGH:
            entered += 1
            care.next_follow_up_at = _next(care.last_contact_at or at, rule.cadence_days)
        care.level = ServiceLevel.HIGH
        if care.reason != CareReason.MANUAL:
            care.reason = reason
        care.owner_id = care.owner_id or owners.get(customer_id) or rule.default_owner_id
        care.cadence_days = rule.cadence_days
        care.p_alive_previous = care.p_alive_current
        care.p_alive_current = p_alive.get(customer_id)
        care.evaluated_at = at
    CustomerCare.objects.bulk_create(to_create, batch_size=2000)
    CustomerCare.objects.bulk_update(
        to_update,
        [
            "level",
            "reason",
            "owner",
            "cadence_days",
            "p_alive_previous",
            "p_alive_current",
            "evaluated_at",
            "next_follow_up_at",
        ],
        batch_size=2000,
    )
    left = (
        CustomerCare.objects.filter(level=ServiceLevel.HIGH)
        .exclude(Q(customer_id__in=list(reasons)) | Q(reason=CareReason.MANUAL))
        .update(level=ServiceLevel.LOW, next_follow_up_at=None, evaluated_at=at)
    )
    Account.objects.filter(named=True, follow_up_days__isnull=True).update(
        follow_up_days=rule.cadence_days
    )
    return ServiceLevelResult(high=len(reasons), entered=entered, left=left)


@transaction.atomic
def care_assign(
    *,
    customer: Customer,
    owner: Any,
    level: str = ServiceLevel.HIGH,
    cadence_days: int = 30,
    actor: AbstractBaseUser | None = None,
) -> CustomerCare:
    """Put a customer in (or out of) high-touch care by hand."""
    errors: Errors = {}
    if level not in ServiceLevel.values:
        _add(errors, "level", _("Choose one of: %(c)s.") % {"c": ", ".join(ServiceLevel.values)})
    user = _active_staff(errors, "owner", owner) if level == ServiceLevel.HIGH else None
    if level == ServiceLevel.HIGH and user is None and "owner" not in errors:
        _add(errors, "owner", _("A high-touch customer needs an owner."))
    if not _whole(cadence_days) or not 1 <= cadence_days <= 366:
        _add(errors, "cadence_days", _("A follow-up cadence is 1 to 366 days."))
    _raise(errors)
    care, _created = CustomerCare.objects.select_for_update().get_or_create(
        customer=customer, defaults={"reason": CareReason.MANUAL}
    )
    care.level = level
    care.reason = CareReason.MANUAL
    care.owner = user  # type: ignore[assignment]
    care.cadence_days = cadence_days
    care.next_follow_up_at = (
        _next(care.last_contact_at, cadence_days) if level == ServiceLevel.HIGH else None
    )
    with acting_as(actor):
        care.save()
    return care
