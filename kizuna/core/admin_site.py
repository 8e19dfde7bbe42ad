"""Django's admin, for superusers only: staff work in the console, where services apply."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest


class SuperuserAdminSite(admin.AdminSite):
    site_header = "kizuna admin"
    site_title = "kizuna admin"

    def has_permission(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_superuser)


class KizunaAdminConfig(AdminConfig):
    default_site = "kizuna.core.admin_site.SuperuserAdminSite"
