from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from kizuna.commerce.models import Order, OrderLine, Refund
from kizuna.core.admin_mixins import AppendOnlyAdmin


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    extra = 0
    can_delete = False
    readonly_fields = ["product", "sku", "name", "quantity", "unit_price_minor", "total_minor"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Order)
class OrderAdmin(AppendOnlyAdmin):
    list_display = ["number", "customer", "placed_at", "status", "total_minor", "channel", "store"]
    list_filter = ["status", "channel", "store"]
    search_fields = ["number"]
    date_hierarchy = "placed_at"
    inlines = [OrderLineInline]
    show_full_result_count = False


@admin.register(Refund)
class RefundAdmin(AppendOnlyAdmin):
    list_display = ["order", "amount_minor", "reason", "created_at"]
