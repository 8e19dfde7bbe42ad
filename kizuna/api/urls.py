from functools import partial

from django.urls import path
from ninja.openapi.views import openapi_view

from kizuna.api.api import api
from kizuna.api.auth import docs_guard

urlpatterns: list = [
    path("docs", docs_guard(partial(openapi_view, api=api)), name="api-docs"),
    path("", api.urls),
]
