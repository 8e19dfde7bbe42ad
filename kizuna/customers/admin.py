from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from kizuna.core.admin_mixins import AppendOnlyAdmin
from kizuna.customers.models import ConsentEntry, Customer, Event, Identity, TraitDefinition


class IdentityInline(admin.TabularInline):
    model = Identity
    extra = 0
    readonly_fields = ["kind", "value", "source", "created_at"]
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ["id", "family_name", "given_name", "email", "prefecture", "last_seen_at"]
    search_fields = ["family_name", "given_name", "family_name_kana", "given_name_kana", "email"]
    list_filter = ["prefecture", "gender", "locale"]
    readonly_fields = ["first_seen_at", "last_seen_at", "created_at", "updated_at"]
    inlines = [IdentityInline]


@admin.register(Identity)
class IdentityAdmin(AppendOnlyAdmin):
    list_display = ["kind", "value", "customer", "source", "created_at"]
    list_filter = ["kind"]
    search_fields = ["value"]


@admin.register(ConsentEntry)
class ConsentEntryAdmin(AppendOnlyAdmin):
    list_display = ["customer", "purpose", "channel", "status", "source", "recorded_at"]
    list_filter = ["purpose", "channel", "status"]


@admin.register(Event)
class EventAdmin(AppendOnlyAdmin):
    list_display = ["type", "customer", "occurred_at", "source"]
    list_filter = ["type", "source"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(TraitDefinition)
class TraitDefinitionAdmin(admin.ModelAdmin):
    list_display = ["key", "label", "type"]
