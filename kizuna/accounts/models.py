"""B2B accounts and their contacts, deals pipelines, activities, and the service level of
each customer (high-touch with an owner and a follow-up cadence, or low-touch).

Money is whole yen. A stage belongs to one pipeline; a deal's stage is always one of its
pipeline's stages (checked by the services, which are the only writers).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.models import Customer


class ServiceLevel(models.TextChoices):
    HIGH = "high", _("High-touch")
    LOW = "low", _("Low-touch")


class ContactRole(models.TextChoices):
    DECISION_MAKER = "decision_maker", _("Decision maker")
    CHAMPION = "champion", _("Champion")
    USER = "user", _("User")
    BILLING = "billing", _("Billing")
    OTHER = "other", _("Other")


class Account(models.Model):
    """A company the business sells to; accounts form a hierarchy (group, subsidiary)."""

    name = models.CharField(_("company"), max_length=200)
    domain = models.CharField(_("web domain"), max_length=200, blank=True)
    parent = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="children",
        verbose_name=_("parent account"),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_accounts",
        verbose_name=_("owner"),
    )
    named = models.BooleanField(
        _("named account"),
        default=False,
        help_text=_("Named accounts get high-touch care whatever their contacts' CLV."),
    )
    follow_up_days = models.PositiveSmallIntegerField(_("follow-up every (days)"), null=True)
    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True)
    next_follow_up_at = models.DateTimeField(_("next follow-up"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        ordering = ["name", "id"]
        indexes = [models.Index(fields=["owner", "next_follow_up_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(parent__isnull=True) | ~Q(parent=F("id")),
                name="account_not_its_own_parent",
            )
        ]

    def __str__(self) -> str:
        return self.name


class AccountContact(models.Model):
    """A customer who is a contact of an account, with their role there."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="contacts")
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="account_links")
    role = models.CharField(
        _("role"), max_length=20, choices=ContactRole.choices, default=ContactRole.OTHER
    )
    title = models.CharField(_("job title"), max_length=100, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("account contact")
        verbose_name_plural = _("account contacts")
        ordering = ["account", "id"]
        constraints = [
            models.UniqueConstraint(fields=["account", "customer"], name="account_contact_once")
        ]

    def __str__(self) -> str:
        return f"{self.customer} @ {self.account}"


class Pipeline(models.Model):
    name = models.CharField(_("name"), max_length=100, unique=True)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("pipeline")
        verbose_name_plural = _("pipelines")
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Outcome(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Stage(models.Model):
    pipeline = models.ForeignKey(Pipeline, on_delete=models.CASCADE, related_name="stages")
    name = models.CharField(_("name"), max_length=100)
    position = models.PositiveSmallIntegerField(_("position"))
    probability = models.PositiveSmallIntegerField(_("probability (%)"))
    outcome = models.CharField(
        _("outcome"), max_length=4, choices=Outcome.choices, default=Outcome.OPEN
    )

    class Meta:
        verbose_name = _("stage")
        verbose_name_plural = _("stages")
        ordering = ["pipeline", "position", "id"]
        constraints = [
            models.UniqueConstraint(fields=["pipeline", "name"], name="stage_name_per_pipeline"),
            models.CheckConstraint(
                condition=Q(probability__gte=0) & Q(probability__lte=100),
                name="stage_probability_0_100",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.probability}%)"


class Deal(models.Model):
    title = models.CharField(_("title"), max_length=200)
    account = models.ForeignKey(
        Account,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("account"),
    )
    contact = models.ForeignKey(
        Customer,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("contact"),
    )
    pipeline = models.ForeignKey(Pipeline, on_delete=models.PROTECT, related_name="deals")
    stage = models.ForeignKey(Stage, on_delete=models.PROTECT, related_name="deals")
    amount_yen = models.BigIntegerField(_("amount (yen)"), default=0)
    expected_close = models.DateField(_("expected close"), null=True, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="deals",
        verbose_name=_("owner"),
    )
    status = models.CharField(
        _("status"), max_length=4, choices=Outcome.choices, default=Outcome.OPEN
    )
    close_reason = models.CharField(_("won/lost reason"), max_length=200, blank=True)
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)
    stage_changed_at = models.DateTimeField(_("in this stage since"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("deal")
        verbose_name_plural = _("deals")
        ordering = ["-created_at", "-id"]
        permissions = [("view_all_deals", "See and work every owner's deals and tasks")]
        indexes = [
            # the board: open deals of a stage by expected close (and the per-stage sums)
            models.Index(fields=["pipeline", "status", "stage", "expected_close", "id"]),
            models.Index(fields=["owner", "status"]),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(amount_yen__gte=0), name="deal_amount_not_negative")
        ]

    def __str__(self) -> str:
        return self.title


class ActivityKind(models.TextChoices):
    CALL = "call", _("Call")
    MEETING = "meeting", _("Meeting")
    TASK = "task", _("Task")
    NOTE = "note", _("Note")


class Activity(models.Model):
    """A call, meeting, task or note, on the timelines of a contact, an account or a deal."""

    kind = models.CharField(_("kind"), max_length=8, choices=ActivityKind.choices)
    subject = models.CharField(_("subject"), max_length=200)
    body = models.TextField(_("details"), blank=True)
    account = models.ForeignKey(
        Account, on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    deal = models.ForeignKey(
        Deal, on_delete=models.CASCADE, null=True, blank=True, related_name="activities"
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="assigned_activities",
        verbose_name=_("assigned to"),
    )
    occurred_at = models.DateTimeField(_("when"))
    due_at = models.DateTimeField(_("due"), null=True, blank=True)
    remind_at = models.DateTimeField(_("reminder"), null=True, blank=True)
    reminded_at = models.DateTimeField(_("reminded at"), null=True, blank=True)
    done_at = models.DateTimeField(_("done at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["assigned_to", "done_at", "due_at"]),
            models.Index(fields=["account", "-occurred_at"]),
            models.Index(fields=["customer", "-occurred_at"]),
            models.Index(fields=["deal", "-occurred_at"]),
            models.Index(
                fields=["remind_at"],
                condition=Q(reminded_at__isnull=True),
                name="activity_reminder_due",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(account__isnull=False)
                | Q(customer__isnull=False)
                | Q(deal__isnull=False),
                name="activity_has_subject",
            ),
            models.CheckConstraint(
                condition=~Q(kind="task") | Q(due_at__isnull=False), name="task_has_due_date"
            ),
        ]

    def __str__(self) -> str:
        return self.subject


class CareReason(models.TextChoices):
    TOP_CLV = "top_clv", _("Top CLV")
    NAMED_ACCOUNT = "named_account", _("Named account")
    MANUAL = "manual", _("Assigned by hand")
    RULE = "rule", _("Service-level rule")


class CustomerCare(models.Model):
    """A customer's service level: high-touch (an owner who follows up every `cadence_days`)
    or low-touch (automated journeys only)."""

    customer = models.OneToOneField(
        Customer, on_delete=models.CASCADE, primary_key=True, related_name="care"
    )
    level = models.CharField(
        _("service level"), max_length=4, choices=ServiceLevel.choices, default=ServiceLevel.LOW
    )
    reason = models.CharField(_("why"), max_length=16, choices=CareReason.choices)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="cared_customers",
        verbose_name=_("owner"),
    )
    cadence_days = models.PositiveSmallIntegerField(_("follow-up every (days)"), default=30)
    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True)
    next_follow_up_at = models.DateTimeField(_("next follow-up"), null=True, blank=True)
    # P(alive) at the last two evaluations: a fall between them is an at-risk signal.
    p_alive_previous = models.FloatField(null=True, blank=True)
    p_alive_current = models.FloatField(null=True, blank=True)
    evaluated_at = models.DateTimeField(_("evaluated at"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer service level")
        verbose_name_plural = _("customer service levels")
        indexes = [models.Index(fields=["owner", "level", "next_follow_up_at"])]

    def __str__(self) -> str:
        return f"{self.customer_id}: {self.level}"


class ServiceLevelRule(models.Model):
    """The installation's one rule deciding who is high-touch."""

    top_clv_percent = models.DecimalField(
        _("top CLV share (%)"), max_digits=5, decimal_places=2, default=5
    )
    include_named_accounts = models.BooleanField(_("named accounts' contacts"), default=True)
    cadence_days = models.PositiveSmallIntegerField(_("follow-up every (days)"), default=30)
    default_owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("owner of customers without an account owner"),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("service-level rule")
        constraints = [
            models.CheckConstraint(
                condition=Q(top_clv_percent__gte=0) & Q(top_clv_percent__lte=100),
                name="rule_top_clv_percent_0_100",
            ),
            models.CheckConstraint(condition=Q(cadence_days__gte=1), name="rule_cadence_positive"),
        ]

    def __str__(self) -> str:
        return f"top {self.top_clv_percent}% CLV"
