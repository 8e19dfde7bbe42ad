"""Every URL and every API route refuses an anonymous caller and a staff user without a
role, except a short, reviewed allow-list of public endpoints (issue 11, "Access").

The routes are read from the live URL resolver and the live OpenAPI schema, so a route
added later by any app is audited too; a failure names the route."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client, override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls import path as url

# Path prefixes that are public by design, each with the reason it is safe. Keep it short:
# a new public endpoint needs a reviewed entry here (and docs/privacy.md, "Access").
PUBLIC_PREFIXES: dict[str, str] = {
    "login/": "the console's sign-in page (throttled)",
    "logout/": "signing out needs no permission",
    "i18n/": "language switch (no data)",
    "assets/": "static assets served by a view (no data)",
    "m/": "member portal: every page needs a signed, expiring token",
    "t/": "open pixel, click redirect and unsubscribe: signed tokens",
    "hooks/": "inbound webhooks: each checks the provider's signature",
    "v1/": "Segment-compatible ingestion: write keys (tracking.auth)",
}
# Public by design, exact paths: Django admin's own sign-in and sign-out pages.
# The OpenAPI document is public by design (kizuna/api/tests/test_openapi.py; no data).
PUBLIC_PATHS = {"/admin/login/", "/admin/logout/", "/api/v1/openapi.json"}
# For any signed-in staff user, whatever the role: the API's docs and schema (no data),
# and the two-factor page (kizuna.iam.otp).
ANY_STAFF_PATHS = {"/api/v1/docs", "/otp/"}
# API routes that need no authentication (none today): exact OpenAPI paths.
PUBLIC_API_PATHS: set[str] = set()

SAMPLES = {
    "int": "1",
    "str": "x",
    "slug": "x",
    "path": "x",
    "uuid": "0" * 8 + "-0000-0000-0000-" + "0" * 12,
}
LOGIN = re.compile(r"/(admin/)?login/")


def _route_to_path(route: str) -> str:
    def sample(match: re.Match[str]) -> str:
        converter = match.group(1) or "str"
        return SAMPLES.get(converter, "1")

    return re.sub(r"<(?:(\w+):)?\w+>", sample, route)


def _regex_to_path(regex: str) -> str:
    regex = regex.lstrip("^").rstrip("$").replace("\\Z", "")

    def group(match: re.Match[str]) -> str:
        body = match.group(1)
        words = re.findall(r"[a-z_]+", body)
        if "|" in body and words:
            return words[0]
        return "1"

    path = re.sub(r"\(\?P<\w+>([^)]*)\)", group, regex)
    return path.replace("\\", "")


def _walk(resolvers: list[Any], prefix: str = "") -> Iterator[tuple[str, str | None]]:
    for entry in resolvers:
        pattern = entry.pattern
        part = (
            _route_to_path(str(pattern._route))
            if hasattr(pattern, "_route")
            else _regex_to_path(str(pattern._regex))
        )
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + part)
        elif isinstance(entry, URLPattern):
            yield prefix + part, entry.name


def _routes() -> list[str]:
    paths = []
    api = [
        re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)) + "$")
        for _method, path in _api_operations()
    ]
    for path, name in _walk(get_resolver().url_patterns):
        if name == "api-root" or any(p.match("/" + path) for p in api):
            continue  # ninja's placeholder (always 404); API routes are audited per method
        if any(path.startswith(p) for p in PUBLIC_PREFIXES) or "/" + path in PUBLIC_PATHS:
            continue
        paths.append("/" + path)
    return sorted(set(paths))


def _refused_anonymous(response: Any) -> bool:
    if response.status_code in (302, 303):
        return bool(LOGIN.search(response.headers.get("Location", "")))
    return response.status_code in (401, 403)


def _refused_staff(path: str, response: Any) -> bool:
    if path.startswith("/admin/") and response.status_code == 302:
        return bool(LOGIN.search(response.headers.get("Location", "")))  # superusers only
    return response.status_code == 403


@pytest.fixture
def unprivileged(db: None, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("nobody", password="pw", is_staff=True)
    client = Client()
    client.force_login(user)
    return client


def audit(routes: list[str], unprivileged: Client) -> list[str]:
    anonymous = Client()
    failures: list[str] = []
    for path in routes:
        real_refusals = 0
        for method in ("get", "post"):
            anon = getattr(anonymous, method)(path)
            staff = getattr(unprivileged, method)(path)
            if anon.status_code == 405 and staff.status_code == 405:
                continue  # the method does not exist for this route
            real_refusals += 1
            if not _refused_anonymous(anon):
                failures.append(f"{method.upper()} {path}: anonymous got {anon.status_code}")
            if path not in ANY_STAFF_PATHS and not _refused_staff(path, staff):
                failures.append(
                    f"{method.upper()} {path}: staff without a role got {staff.status_code}"
                )
        if not real_refusals:
            failures.append(f"{path}: neither GET nor POST exists (check the audit)")
    return failures


def test_every_url_refuses_anonymous_and_unprivileged_staff(unprivileged: Client) -> None:
    routes = _routes()
    assert len(routes) > 50  # the walk found the console, the admin and the API docs
    assert "/customers/1/" in routes and "/api/v1/docs" in routes
    failures = audit(routes, unprivileged)
    assert not failures, "\n".join(failures)


def _api_operations() -> list[tuple[str, str]]:
    # The live schema as served (a face: read over HTTP, not imported, per the layers).
    schema = Client().get("/api/v1/openapi.json").json()
    operations = []
    for path, methods in schema["paths"].items():
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append((method, path))
    return sorted(operations)


def test_every_api_route_refuses_anonymous_and_unprivileged_staff(unprivileged: Client) -> None:
    operations = _api_operations()
    assert len(operations) > 30
    anonymous = Client()
    failures: list[str] = []
    for method, path in operations:
        if path in PUBLIC_API_PATHS:
            continue
        url = re.sub(r"\{\w+\}", "1", path)
        anon = getattr(anonymous, method)(url, content_type="application/json")
        staff = getattr(unprivileged, method)(url, content_type="application/json")
        if anon.status_code != 401:
            failures.append(f"{method.upper()} {path}: anonymous got {anon.status_code}")
        if staff.status_code != 403:
            failures.append(
                f"{method.upper()} {path}: staff without a role got {staff.status_code}"
            )
    assert not failures, "\n".join(failures)


def _open_view(request: Any, pk: int) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [url("x/open/<int:pk>/", _open_view, name="open")]


@override_settings(ROOT_URLCONF=__name__)
def test_the_audit_catches_an_open_route(unprivileged: Client) -> None:
    # The audit can fail: a view without a permission check is reported by route.
    assert dict(_walk(get_resolver().url_patterns)) == {"x/open/1/": "open"}
    assert audit(["/x/open/1/"], unprivileged) == [
        "GET /x/open/1/: anonymous got 200",
        "GET /x/open/1/: staff without a role got 200",
        "POST /x/open/1/: anonymous got 200",
        "POST /x/open/1/: staff without a role got 200",
    ]
