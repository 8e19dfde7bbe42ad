"""LINE Login account linking (OAuth 2.0 authorization-code flow, LINE Login v2.1).

The member portal sends a customer to LINE's authorize URL with a signed `state` naming the
customer and the channel; LINE redirects back with a code, which is exchanged for tokens at
the token endpoint; the profile endpoint gives the LINE user id, stored as the customer's
`line` identity (and on messaging's `LineContact` for the channel, so pushes and rich menus
reach them once they follow the account).

line-bot-sdk covers the Messaging API, not LINE Login's user flow: these two requests use
the standard library. Configuration: `login_channel_save` (a `LoginChannel` beside the
messaging LINE channel: LINE Login channel id, its secret stored encrypted, and optionally
the authorize host, default https://access.line.me, and the API host, default the messaging
channel's `host` or https://api.line.me).
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.customers.choices import IdentityKind
from kizuna.customers.models import Customer, Identity
from kizuna.customers.services import identity_add
from kizuna.line_marketing.models import LoginChannel
from kizuna.messaging import crypto
from kizuna.messaging.models import Channel, LineContact

SALT = "kizuna.line_marketing.login"
STATE_MAX_AGE = 600  # the customer has 10 minutes to log in at LINE
AUTHORIZE_HOST = "https://access.line.me"
API_HOST = "https://api.line.me"
TIMEOUT = 10


@dataclass(frozen=True)
class LoginConfig:
    channel_id: str
    channel_secret: str
    authorize_host: str
    api_host: str


def login_channel_save(
    *,
    channel: Channel,
    login_channel_id: str,
    secret: str,
    authorize_host: str = "",
    api_host: str = "",
) -> LoginChannel:
    """Set up LINE Login for a LINE channel (replaces an earlier set-up)."""
    errors: dict[str, list[str]] = {}
    if channel.kind != "line":
        errors["channel"] = [_("Choose a LINE channel.")]
    if not login_channel_id.isdigit() or len(login_channel_id) > 20:
        errors["login_channel_id"] = [_("A LINE Login channel ID is a number.")]
    if not secret or len(secret) > 100:
        errors["secret"] = [_("Give the LINE Login channel secret.")]
    for field, host in (("authorize_host", authorize_host), ("api_host", api_host)):
        if host and not host.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            errors[field] = [_("Use an https:// address.")]
    if errors:
        raise ValidationError(errors)
    login, _created = LoginChannel.objects.update_or_create(
        channel=channel,
        defaults={
            "login_channel_id": login_channel_id,
            "secret_encrypted": crypto.encrypt({"secret": secret}),
            "authorize_host": authorize_host.rstrip("/"),
            "api_host": api_host.rstrip("/"),
        },
    )
    return login


def login_channel() -> Channel | None:
    """The active LINE channel with LINE Login set up (the first, if several)."""
    login = (
        LoginChannel.objects.filter(channel__active=True, channel__kind="line")
        .select_related("channel")
        .order_by("channel_id")
        .first()
    )
    return login.channel if login else None


def login_config(channel: Channel) -> LoginConfig:
    login = LoginChannel.objects.filter(channel=channel).first()
    secret = crypto.decrypt(login.secret_encrypted).get("secret") if login else None
    if login is None or not secret or not channel.active:
        raise ValidationError({"channel": [_("LINE Login is not set up for this channel.")]})
    return LoginConfig(
        channel_id=login.login_channel_id,
        channel_secret=str(secret),
        authorize_host=login.authorize_host or AUTHORIZE_HOST,
        api_host=(login.api_host or str(channel.settings.get("host") or API_HOST)).rstrip("/"),
    )


def authorize_url(*, customer: Customer, channel: Channel, redirect_uri: str) -> str:
    """Where to send the customer to log in with LINE (scope `profile openid`)."""
    config = login_config(channel)
    state = signing.dumps(
        {"c": customer.pk, "ch": channel.pk, "n": secrets.token_hex(8)}, salt=SALT, compress=True
    )
    query = urllib.parse.urlencode(
        {
            "response_type": "code",
            "client_id": config.channel_id,
            "redirect_uri": redirect_uri,
            "state": state,
            "scope": "profile openid",
            "nonce": secrets.token_hex(8),
        }
    )
    return f"{config.authorize_host}/oauth2/v2.1/authorize?{query}"


def _request(url: str, **kwargs: Any) -> urllib.request.Request:
    """An HTTP(S) request only (the hosts come from the set-up, checked when saved)."""
    if not url.startswith(("https://", "http://")):
        raise ValidationError({"channel": [_("LINE Login is not set up for this channel.")]})
    return urllib.request.Request(url, **kwargs)  # noqa: S310


def _call(request: urllib.request.Request) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:  # noqa: S310
            data = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        raise ValidationError(
            {"code": [_("LINE Login refused the request (%(status)s).") % {"status": exc.code}]}
        ) from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ValidationError({"code": [_("LINE Login could not be reached.")]}) from exc
    return data if isinstance(data, dict) else {}


def link_from_callback(*, code: str, state: str, redirect_uri: str) -> Identity:
    """Finish the flow: check the state, exchange the code, read the profile, and link the
    LINE user id to the customer. A LINE id already linked to another customer is refused
    (never moved silently)."""
    try:
        data = signing.loads(state, salt=SALT, max_age=STATE_MAX_AGE)
    except signing.BadSignature as exc:
        raise ValidationError({"state": [_("The login link has expired; try again.")]}) from exc
    customer = Customer.objects.filter(pk=data.get("c")).first()
    channel = Channel.objects.filter(pk=data.get("ch")).first()
    if customer is None or channel is None:
        raise ValidationError({"state": [_("The login link has expired; try again.")]})
    if not code:
        raise ValidationError({"code": [_("LINE did not return an authorization code.")]})
    config = login_config(channel)
    token = _call(
        _request(
            f"{config.api_host}/oauth2/v2.1/token",
            data=urllib.parse.urlencode(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": redirect_uri,
                    "client_id": config.channel_id,
                    "client_secret": config.channel_secret,
                }
            ).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            method="POST",
        )
    )
    access = token.get("access_token")
    if not isinstance(access, str) or not access:
        raise ValidationError({"code": [_("LINE Login returned no access token.")]})
    profile = _call(
        _request(f"{config.api_host}/v2/profile", headers={"Authorization": f"Bearer {access}"})
    )
    user_id = profile.get("userId")
    if not isinstance(user_id, str):
        raise ValidationError({"code": [_("LINE Login returned no user id.")]})
    with transaction.atomic():
        existing = Identity.objects.filter(kind=IdentityKind.LINE, value=user_id).first()
        if existing is not None and existing.customer_id != customer.pk:
            raise ValidationError(
                {"code": [_("This LINE account is already linked to another customer.")]}
            )
        identity = existing or identity_add(
            customer=customer, kind=IdentityKind.LINE, value=user_id, source="line_login"
        )
        contact, created = LineContact.objects.get_or_create(
            channel=channel,
            line_user_id=user_id,
            defaults={"customer": customer, "following": False},
        )
        if not created and contact.customer_id != customer.pk:
            contact.customer = customer
            contact.save(update_fields=["customer", "updated_at"])
    return identity
