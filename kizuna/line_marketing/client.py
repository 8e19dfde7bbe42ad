"""line-bot-sdk v3 clients for one LINE channel (messaging's `Channel`): the Messaging API,
its blob host (rich menu images), and the audience API. `settings["host"]` points every
client, the blob one included, at another host (a local test server)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from linebot.v3.audience import ApiClient as AudienceApiClient
from linebot.v3.audience import Configuration as AudienceConfiguration
from linebot.v3.audience import ManageAudience
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, MessagingApiBlob

from kizuna.messaging import crypto
from kizuna.messaging.models import Channel

DEFAULT_HOST = "https://api.line.me"
DEFAULT_DATA_HOST = "https://api-data.line.me"


class LineConfigError(Exception):
    """The channel is not a LINE channel with an access token."""


@dataclass
class LineClients:
    messaging: MessagingApi
    blob: MessagingApiBlob
    audience: ManageAudience


def _token(channel: Channel) -> str:
    if channel.kind != "line":
        raise LineConfigError("not a LINE channel")
    token = crypto.decrypt(channel.credentials_encrypted).get("access_token")
    if not token:
        raise LineConfigError("the LINE channel has no access token")
    return str(token)


@contextmanager
def line_clients(channel: Channel) -> Iterator[LineClients]:
    token = _token(channel)
    host = str(channel.settings.get("host") or DEFAULT_HOST).rstrip("/")
    data_host = host if channel.settings.get("host") else DEFAULT_DATA_HOST
    api = ApiClient(Configuration(host=host, access_token=token))
    blob = ApiClient(Configuration(host=data_host, access_token=token))
    audience = AudienceApiClient(AudienceConfiguration(host=host, access_token=token))
    try:
        yield LineClients(MessagingApi(api), MessagingApiBlob(blob), ManageAudience(audience))
    finally:
        api.close()
        blob.close()
        audience.close()
