"""The loyalty programme: settings, tiers, the append-only points ledger with its lots,
rewards and coupons.

The ledger (`LedgerEntry`) is the truth. `Account.balance` and `Lot.remaining` are
projections written in the same transaction as each entry; every entry records the lots
it moved (`allocations`), so replaying the ledger reproduces both exactly.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from kizuna.customers.models import Customer


class Rounding(models.TextChoices):
    FLOOR = "floor", _("Round down")
    HALF_UP = "half_up", _("Round half up")
    CEIL = "ceil", _("Round up")


class PaidPointsOrder(models.TextChoices):
    """Which points a redemption takes first (資金決済法: paid points are a prepaid
    instrument; many programmes spend the free ones first so that less prepaid value
    stays outstanding, or the paid ones first so that free points are not wasted)."""

    EXPIRY = "expiry", _("First-expiring points first")
    FREE_FIRST = "free_first", _("Free points first, paid points last")
    PAID_FIRST = "paid_first", _("Paid points first")


class TierPeriod(models.TextChoices):
    ROLLING = "rolling", _("Rolling window")
    YEARLY = "yearly", _("Yearly reset: this year's rank from last year's total")


class TierBasis(models.TextChoices):
    SPEND = "spend", _("Spend in the window")
    POINTS = "points", _("Points earned in the window")


class Programme(models.Model):
    """The business's one loyalty programme (one business per installation)."""

    name = models.CharField(_("name"), max_length=100)
    earn_points = models.PositiveIntegerField(_("points earned"), default=1)
    earn_per_yen = models.PositiveIntegerField(_("per yen spent"), default=100)
    rounding = models.CharField(
        _("rounding"), max_length=10, choices=Rounding.choices, default=Rounding.FLOOR
    )
    category_multipliers = models.JSONField(
        _("category multipliers"), default=dict, blank=True, help_text="slug -> multiplier"
    )
    product_multipliers = models.JSONField(
        _("product multipliers"), default=dict, blank=True, help_text="SKU -> multiplier"
    )
    event_points = models.JSONField(
        _("points for engagement events"),
        default=dict,
        blank=True,
        help_text="event type -> points, e.g. {'Store Checked In': 5}",
    )
    point_value = models.DecimalField(
        _("yen value of a point"), max_digits=10, decimal_places=4, default=Decimal("1")
    )
    expected_breakage = models.DecimalField(
        _("expected breakage"),
        max_digits=5,
        decimal_places=4,
        default=Decimal("0.2"),
        help_text="share of points expected never to be used (0 to 1)",
    )
    expiry_months = models.PositiveIntegerField(
        _("points expire at the end of the month this many months after earning (0: never)"),
        default=12,
    )
    allow_negative = models.BooleanField(_("refunds may make a balance negative"), default=False)
    tier_basis = models.CharField(
        _("tier basis"), max_length=10, choices=TierBasis.choices, default=TierBasis.SPEND
    )
    tier_window_months = models.PositiveIntegerField(_("tier window (months)"), default=12)
    tier_period = models.CharField(
        _("tier period"),
        max_length=10,
        choices=TierPeriod.choices,
        default=TierPeriod.ROLLING,
        help_text=_(
            "Yearly: ranks are reset each year; the rank for a year is held by the previous "
            "year's total (and reached at once when this year's total qualifies)."
        ),
    )
    tier_year_start_month = models.PositiveSmallIntegerField(
        _("month the rank year starts"), default=1
    )
    paid_points_order = models.CharField(
        _("order points are spent in"),
        max_length=10,
        choices=PaidPointsOrder.choices,
        default=PaidPointsOrder.EXPIRY,
    )
    tier_grace_months = models.PositiveIntegerField(
        _("months a tier is kept after the customer stops qualifying"), default=0
    )
    birthday_coupon = models.ForeignKey(
        "CouponDefinition",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("birthday coupon"),
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("loyalty programme")
        constraints = [
            models.CheckConstraint(condition=Q(earn_per_yen__gt=0), name="programme_rate_gt_0"),
            models.CheckConstraint(
                condition=Q(tier_year_start_month__gte=1) & Q(tier_year_start_month__lte=12),
                name="programme_year_start_month_1_12",
            ),
            models.CheckConstraint(
                condition=Q(expected_breakage__gte=0) & Q(expected_breakage__lte=1),
                name="programme_breakage_0_1",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Tier(models.Model):
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="tiers")
    code = models.SlugField(_("code"), max_length=30)
    name = models.CharField(_("name"), max_length=50)
    name_en = models.CharField(_("name (English)"), max_length=50, blank=True)
    rank = models.PositiveIntegerField(_("rank"))
    threshold = models.BigIntegerField(_("qualifying threshold"), default=0)
    earn_multiplier = models.DecimalField(
        _("earn multiplier"), max_digits=6, decimal_places=3, default=Decimal("1")
    )
    benefits = models.TextField(_("benefits"), blank=True)

    class Meta:
        verbose_name = _("tier")
        ordering = ["rank"]
        constraints = [
            models.UniqueConstraint(fields=["programme", "code"], name="tier_code_unique"),
            models.UniqueConstraint(fields=["programme", "rank"], name="tier_rank_unique"),
            models.CheckConstraint(condition=Q(threshold__gte=0), name="tier_threshold_gte_0"),
        ]

    def __str__(self) -> str:
        return self.name


class BonusCampaign(models.Model):
    """Extra points for orders placed between two moments (e.g. double points week)."""

    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(_("name"), max_length=100)
    starts_at = models.DateTimeField(_("starts at"))
    ends_at = models.DateTimeField(_("ends at"))
    multiplier = models.DecimalField(
        _("multiplier"), max_digits=6, decimal_places=3, default=Decimal("2")
    )

    class Meta:
        verbose_name = _("bonus campaign")
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="bonus_dates"),
        ]

    def __str__(self) -> str:
        return self.name


class Account(models.Model):
    """A customer's membership: the balance and tier are projections of the ledger."""

    customer = models.OneToOneField(
        Customer, on_delete=models.PROTECT, related_name="loyalty_account"
    )
    member_number = models.CharField(_("member number"), max_length=20, unique=True)
    balance = models.BigIntegerField(_("balance"), default=0)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, blank=True)
    tier_value = models.BigIntegerField(_("qualifying value"), default=0)
    tier_kept_until = models.DateField(null=True, blank=True)
    tier_evaluated_on = models.DateField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("loyalty account")
        constraints = [
            models.CheckConstraint(condition=Q(tier_value__gte=0), name="account_tier_value_gte_0")
        ]

    def __str__(self) -> str:
        return self.member_number


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    REDEEM = "redeem", _("Redeemed")
    EXPIRE = "expire", _("Expired")
    ADJUST = "adjust", _("Adjusted")
    TRANSFER_IN = "transfer_in", _("Transferred in")
    TRANSFER_OUT = "transfer_out", _("Transferred out")
    REVERSAL = "reversal", _("Reversed")


class EntrySource(models.TextChoices):
    ORDER = "order", _("Order")
    EVENT = "event", _("Event")
    STAFF = "staff", _("Staff")
    SYSTEM = "system", _("System")
    REWARD = "reward", _("Reward")
    MERGE = "merge", _("Merge")


class LotKind(models.TextChoices):
    FREE = "free", _("Free points")
    PAID = "paid", _("Paid points")


class LedgerEntry(models.Model):
    """One signed movement of points. Never updated or deleted."""

    # Indexed by (account, -occurred_at) below; no separate index on the key alone.
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=12, choices=EntryKind.choices)
    points = models.BigIntegerField(_("points"))
    balance_after = models.BigIntegerField(_("balance after"))
    spend_minor = models.BigIntegerField(_("qualifying spend"), default=0)
    idempotency_key = models.CharField(_("idempotency key"), max_length=120, unique=True)
    payload_hash = models.CharField(max_length=64)
    reason = models.CharField(_("reason"), max_length=200, blank=True)
    source = models.CharField(_("source"), max_length=10, choices=EntrySource.choices)
    source_ref = models.CharField(_("source reference"), max_length=100, blank=True)
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("staff"),
    )
    # [[lot id, signed points], ...]: how this entry moved lot remainders.
    allocations = models.JSONField(default=list, blank=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        ordering = ["-occurred_at", "-id"]
        indexes = [
            models.Index(fields=["account", "-occurred_at"]),
        ]
        constraints = [
            models.CheckConstraint(condition=~Q(points=0), name="entry_points_nonzero"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points:+d}"


class Lot(models.Model):
    """Points earned together, with their expiry and yen value (ASBJ No. 29)."""

    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="lots", db_index=False
    )
    entry = models.ForeignKey(
        LedgerEntry, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    kind = models.CharField(_("kind"), max_length=4, choices=LotKind.choices, default=LotKind.FREE)
    points = models.BigIntegerField(_("points"))
    remaining = models.BigIntegerField(_("remaining"))
    value_per_point = models.DecimalField(_("yen per point"), max_digits=10, decimal_places=4)
    earned_at = models.DateTimeField(_("earned at"))
    expires_on = models.DateField(_("expires on"), null=True, blank=True)

    class Meta:
        verbose_name = _("points lot")
        indexes = [
            models.Index(fields=["account", "expires_on"]),
            models.Index(
                fields=["expires_on"], name="lot_open_expiry", condition=Q(remaining__gt=0)
            ),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(points__gt=0), name="lot_points_gt_0"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & Q(remaining__lte=F("points")),
                name="lot_remaining_within_points",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.remaining}/{self.points}"


class Reward(models.Model):
    code = models.SlugField(_("code"), max_length=50, unique=True)
    name = models.CharField(_("name"), max_length=100)
    name_en = models.CharField(_("name (English)"), max_length=100, blank=True)
    description = models.TextField(_("description"), blank=True)
    points_price = models.PositiveIntegerField(_("points price"))
    stock = models.IntegerField(_("stock"), null=True, blank=True, help_text="empty: unlimited")
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    eligible_tiers = models.ManyToManyField(Tier, blank=True, verbose_name=_("eligible tiers"))
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("reward")
        ordering = ["points_price", "code"]
        constraints = [
            models.CheckConstraint(condition=Q(points_price__gt=0), name="reward_price_gt_0"),
            models.CheckConstraint(
                condition=Q(stock__isnull=True) | Q(stock__gte=0), name="reward_stock_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Redemption(models.Model):
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    entry = models.OneToOneField(LedgerEntry, on_delete=models.PROTECT, related_name="redemption")
    points = models.PositiveIntegerField(_("points"))
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("redemption")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.reward_id}: {self.points}"


class CouponKind(models.TextChoices):
    PERCENT = "percent", _("Percentage off")
    FIXED = "fixed", _("Fixed amount off")
    FREE_ITEM = "free_item", _("Free item")


class CouponDefinition(models.Model):
    """What a coupon gives and its limits. A shared `code` is typed by anyone; otherwise
    single-use codes are issued per customer or in bulk."""

    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(_("kind"), max_length=10, choices=CouponKind.choices)
    value = models.PositiveIntegerField(
        _("value"), default=0, help_text="percent (1-100) or amount in yen"
    )
    free_sku = models.CharField(_("free item SKU"), max_length=64, blank=True)
    shared_code = models.CharField(_("shared code"), max_length=40, blank=True)
    min_spend_minor = models.BigIntegerField(_("minimum spend"), default=0)
    valid_from = models.DateTimeField(_("valid from"), null=True, blank=True)
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    valid_days = models.PositiveIntegerField(
        _("days an issued code stays valid"), null=True, blank=True
    )
    total_limit = models.PositiveIntegerField(_("total uses"), null=True, blank=True)
    per_customer_limit = models.PositiveIntegerField(_("uses per customer"), default=1)
    uses = models.PositiveIntegerField(_("uses so far"), default=0)
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("coupon")
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["shared_code"], condition=~Q(shared_code=""), name="coupon_shared_code"
            ),
            models.CheckConstraint(
                condition=Q(total_limit__isnull=True) | Q(uses__lte=F("total_limit")),
                name="coupon_uses_within_limit",
            ),
            models.CheckConstraint(
                condition=~Q(kind="percent") | (Q(value__gte=1) & Q(value__lte=100)),
                name="coupon_percent_1_100",
            ),
            models.CheckConstraint(condition=Q(min_spend_minor__gte=0), name="coupon_min_spend"),
        ]

    def __str__(self) -> str:
        return self.name


class Coupon(models.Model):
    """One issued code: to a customer (only they may use it) or a bearer code (customer
    empty). Single use."""

    definition = models.ForeignKey(
        CouponDefinition, on_delete=models.PROTECT, related_name="coupons"
    )
    code = models.CharField(_("code"), max_length=40, unique=True)
    customer = models.ForeignKey(
        Customer, on_delete=models.PROTECT, null=True, blank=True, related_name="coupons"
    )
    issue_key = models.CharField(max_length=120, unique=True)
    issued_at = models.DateTimeField(_("issued at"))
    valid_until = models.DateTimeField(_("valid until"), null=True, blank=True)
    used_at = models.DateTimeField(_("used at"), null=True, blank=True)

    class Meta:
        verbose_name = _("issued coupon")
        ordering = ["-issued_at", "-id"]
        indexes = [models.Index(fields=["customer", "used_at"])]

    def __str__(self) -> str:
        return self.code


class CouponUse(models.Model):
    definition = models.ForeignKey(CouponDefinition, on_delete=models.PROTECT, related_name="+")
    coupon = models.OneToOneField(
        Coupon, on_delete=models.PROTECT, null=True, blank=True, related_name="use"
    )
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="coupon_uses")
    order_ref = models.CharField(_("order"), max_length=64, blank=True)
    order_total_minor = models.BigIntegerField(_("order total"))
    discount_minor = models.BigIntegerField(_("discount"))
    idempotency_key = models.CharField(max_length=120, unique=True)
    payload_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("coupon use")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["definition", "customer"])]
        constraints = [
            models.CheckConstraint(condition=Q(discount_minor__gte=0), name="coupon_use_gte_0")
        ]

    def __str__(self) -> str:
        return f"{self.definition_id}: {self.discount_minor}"
