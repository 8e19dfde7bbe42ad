"""Optional TOTP two-factor for staff, enforced per role (KIZUNA_2FA_ROLES)."""

from __future__ import annotations

from typing import Any

from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice


def _code(device: TOTPDevice) -> str:
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits)
    return str(value).zfill(device.digits)


def test_required_role_must_verify_a_totp_code(db: None, make_staff: Any, settings: Any) -> None:
    settings.KIZUNA_2FA_ROLES = ["admin"]
    settings.OTP_TOTP_THROTTLE_FACTOR = 0  # django-otp slows retries after a failure
    admin = Client(HTTP_ACCEPT_LANGUAGE="en")
    user = make_staff("admin")
    admin.force_login(user)
    response = admin.get("/customers/")
    assert response.status_code == 302 and response["Location"] == "/otp/?next=%2Fcustomers%2F"
    assert admin.get("/api/v1/customers").status_code == 403  # the session on the API too

    page = admin.get("/otp/?next=/customers/")
    assert page.status_code == 200 and b"<svg" in page.content
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    wrong = admin.post("/otp/", {"token": "000000" if _code(device) != "000000" else "111111"})
    assert wrong.status_code == 400
    assert admin.get("/customers/").status_code == 302

    response = admin.post("/otp/", {"token": _code(device), "next": "/customers/"})
    assert response.status_code == 302 and response["Location"] == "/customers/"
    device.refresh_from_db()
    assert device.confirmed
    assert admin.get("/customers/").status_code == 200
    assert admin.get("/api/v1/customers").status_code == 200

    # A role that is not required signs in with the password alone; off by default.
    marketer = Client()
    marketer.force_login(make_staff("marketer"))
    assert marketer.get("/customers/").status_code == 200
    settings.KIZUNA_2FA_ROLES = []
    fresh = Client()
    fresh.force_login(make_staff("admin"))
    assert fresh.get("/customers/").status_code == 200
