from __future__ import annotations

import json

import pytest
from django.test import Client
from ninja.security import HttpBearer
from openapi_spec_validator import validate

from kizuna.api.api import api
from kizuna.iam.authz import ApiKeyAuth, StaffSessionAuth

pytestmark = pytest.mark.django_db


def _operations() -> list:
    ops = []
    for mount in api._get_bound_routers():
        for path_view in mount.path_operations.values():
            ops.extend(path_view.operations)
    return ops


def test_openapi_document_is_public_and_valid(client: Client) -> None:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    validate(spec)
    assert set(spec["components"]["securitySchemes"]) == {"ApiKeyAuth", "StaffSessionAuth"}
    assert spec["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "http",
        "scheme": "bearer",
    }


def test_every_operation_declares_security_and_error_responses() -> None:
    spec = json.loads(json.dumps(api.get_openapi_schema(), default=str))
    operations = [
        (path, method, op) for path, item in spec["paths"].items() for method, op in item.items()
    ]
    assert len(operations) >= 15
    for path, method, op in operations:
        assert op["security"] == [{"ApiKeyAuth": []}, {"StaffSessionAuth": []}], (path, method)
        for status in ("401", "403"):
            assert op["responses"][status]["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorOut"
            }, (path, method, status)
        if "{" in path:
            assert "404" in op["responses"], (path, method)
        if method in {"post", "patch"}:
            assert {"400", "413", "422"} <= set(op["responses"]), (path, method)


def test_every_route_requires_a_named_permission() -> None:
    operations = _operations()
    assert operations
    for operation in operations:
        kinds = [type(cb) for cb in operation.auth_callbacks]
        assert kinds == [ApiKeyAuth, StaffSessionAuth], operation.view_func.__name__
        perms = {cb.perm for cb in operation.auth_callbacks}
        assert len(perms) == 1 and None not in perms, operation.view_func.__name__
        assert isinstance(operation.auth_callbacks[0], HttpBearer)


def test_docs_page_needs_a_staff_session_and_loads_nothing_from_a_cdn(
    client: Client, make_staff
) -> None:
    anonymous = client.get("/api/v1/docs")
    assert anonymous.status_code == 302
    assert "/login/" in anonymous["Location"]
    make_staff("analyst", username="reader")
    assert client.login(username="reader", password="s3cret-Pass!")
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/ninja/swagger-ui-bundle.js" in html
    assert "/static/ninja/swagger-ui.css" in html
    assert "cdn" not in html.lower()
    assert "https://" not in html
    assert 'data-csrf-token=""' not in html  # "Try it out" can send the CSRF token
    assert client.get("/static/ninja/swagger-ui-init.js").status_code == 200
