from django.contrib import admin

from kizuna.catalog.models import Category, Product


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "name_en", "parent"]


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ["sku", "name", "category", "price_minor", "currency", "active"]
    list_filter = ["category", "active"]
    search_fields = ["sku", "name", "name_en"]
