"""Email over SMTP: MIME built for Japanese (UTF-8 by default, ISO-2022-JP when configured),
List-Unsubscribe one-click headers, VERP envelope sender, DKIM signature (dkimpy), one SMTP
session per batch (STARTTLS or implicit TLS when configured)."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import io
import re
import secrets
import smtplib
import ssl
import time
from email import base64mime, policy, quoprimime
from email import charset as email_charset
from email.generator import BytesGenerator
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate
from typing import Any

import dkim
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from kizuna.messaging import crypto, links
from kizuna.messaging.channels import ChannelConfigError, OutboundMessage, Outcome
from kizuna.messaging.models import Channel


class _Compat32(policy.Compat32):
    """compat32 with a shortcut for the common header: a short ASCII value comes out as
    `Name: value` (what Header folding makes of it, without building a Header)."""

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (
            isinstance(value, str)
            and value.isascii()
            and len(name) + 2 + len(value) <= (self.max_line_length or 78)
            and "\n" not in value
            and "\r" not in value
        ):
            return f"{name}: {value}{self.linesep}"
        return str(super()._fold(name, value, sanitize))  # type: ignore[misc]


_NEWLINE = re.compile(r"\r\n|\r|\n")  # email.generator's NLCRE


class _Generator(BytesGenerator):
    """BytesGenerator writing a text payload in one piece instead of line by line (the
    same bytes: each line, then the policy's line separator)."""

    def _write_lines(self, lines: str) -> None:
        if not lines:
            return
        parts = _NEWLINE.split(lines)
        if len(parts) > 1:
            self.write(self._NL.join(parts[:-1]) + self._NL)  # type: ignore[attr-defined]
        if parts[-1]:
            self.write(parts[-1])


# compat32 serialisation (it keeps our RFC 2047 ISO-2022-JP headers as encoded) with CRLF,
# as SMTP wants: aiosmtpd and real MTAs reject bare LF and over-long lines.
SMTP_POLICY = _Compat32(linesep="\r\n")
DKIM_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"mime-version",
    b"content-type",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
]

_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")
_quoteaddr = smtplib.quoteaddr


def _fast_quoteaddr(addrstring: str) -> str:
    """`smtplib.quoteaddr` (which parses every address with `email.utils.parseaddr`), with a
    shortcut for a plain dot-atom address, which it returns as `<address>` unchanged."""
    if isinstance(addrstring, str) and _PLAIN_ADDRESS.fullmatch(addrstring):
        return f"<{addrstring}>"
    return str(_quoteaddr(addrstring))


# smtplib quotes MAIL FROM and RCPT TO addresses through its module-level function; the
# envelope of a bulk message (a VERP sender, one recipient) is plain, so it is replaced once
# here by the same function with a shortcut (`test_send_cpu.py` compares both).
smtplib.quoteaddr = _fast_quoteaddr

# ISO-2022-JP: 7bit body and B-encoded headers, as Japanese mail clients expect.
email_charset.add_charset("iso-2022-jp", email_charset.BASE64, None, "iso-2022-jp")


def _charset_of(channel_settings: dict[str, Any]) -> str:
    value = str(channel_settings.get("charset") or "utf-8").lower()
    return "iso-2022-jp" if value in ("iso-2022-jp", "jis") else "utf-8"


def text_part(text: str, subtype: str, charset: str) -> MIMENonMultipart:
    """`MIMEText(text, subtype, charset)`. For UTF-8 (base64 bodies) the same headers in the
    same order and the same payload, encoded in one call as `email.encoders.encode_base64`
    does rather than through the charset machinery; ISO-2022-JP (7bit) through MIMEText."""
    if charset != "utf-8":
        return MIMEText(text, subtype, charset)
    part = MIMENonMultipart("text", subtype, charset=charset)
    part.set_payload(base64.encodebytes(text.encode(charset)).decode("ascii"))
    part["Content-Transfer-Encoding"] = "base64"
    return part


def _boundary(payloads: list[str]) -> str:
    boundary = "=" * 15 + secrets.token_hex(10) + "=="
    while any(f"--{boundary}" in payload for payload in payloads):
        boundary = "=" * 15 + secrets.token_hex(10) + "=="
    return boundary


@functools.lru_cache(maxsize=2)
def _date(second: int) -> str:
    """`formatdate(localtime=False)` for this second (it shows no fraction)."""
    return formatdate(second, localtime=False)


def build_message(
    *,
    channel_settings: dict[str, Any],
    message: OutboundMessage,
    unsubscribe_url: str = "",
) -> MIMEMultipart:
    """The MIME message (multipart/alternative: text then HTML) for one delivery."""
    charset = _charset_of(channel_settings)
    rendered = message.rendered
    text = rendered.get("text", "")
    html = rendered.get("html", "")
    # The boundary is chosen here rather than by the generator, which checks its random one
    # against the encoded parts with a regex compiled for each message; a plain substring
    # test is enough (and stricter: anywhere, not only at the start of a line).
    parts = [text_part(text, "plain", charset)]
    if html:
        parts.append(text_part(html, "html", charset))
    boundary = _boundary([str(part.get_payload()) for part in parts])
    root = MIMEMultipart("alternative", boundary=boundary)
    for part in parts:
        root.attach(part)
    from_address = str(channel_settings.get("from_address", ""))
    root["From"] = formataddr((str(channel_settings.get("from_name", "")), from_address), charset)
    root["To"] = (
        formataddr((message.customer_name, message.to), charset)
        if message.customer_name
        else message.to
    )
    root["Subject"] = Header(rendered.get("subject", ""), charset)  # type: ignore[assignment]
    root["Date"] = _date(int(time.time()))
    domain = from_address.rsplit("@", 1)[-1] or "localhost"
    root["Message-ID"] = f"<{message.idempotency_key}.{message.delivery_id}@{domain}>"
    if channel_settings.get("reply_to"):
        root["Reply-To"] = str(channel_settings["reply_to"])
    if unsubscribe_url:
        root["List-Unsubscribe"] = f"<{unsubscribe_url}>"
        root["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    root["X-Kizuna-Delivery"] = str(message.delivery_id)
    return root


_CRLF = b"\r\n"


@functools.lru_cache(maxsize=4)
def _part_head(subtype: str) -> bytes:
    """The header block (and the blank line) of a UTF-8 base64 text part, as serialised."""
    part = text_part("", subtype, "utf-8")
    return b"".join(SMTP_POLICY.fold_binary(h, v) for h, v in part.raw_items()) + _CRLF


_PLACEHOLDER = b"a"


@functools.lru_cache(maxsize=256)
def _subject_header(subject: str, charset: str) -> bytes:
    """The folded Subject (a campaign without a personalised subject encodes it once)."""
    if charset == "utf-8":
        fast = _b_encoded_subject(subject)
        if fast is not None:
            return fast
    return SMTP_POLICY.fold_binary("Subject", Header(subject, charset))  # type: ignore[arg-type]


# compat32 folds `Header(subject, "utf-8")` (no header name: the first line counts from 0)
# at 78 characters; an encoded word costs len("utf-8") + 7 characters of chrome, and a
# continuation line starts with one space.
_FIRST_WORD, _NEXT_WORD = 78 - 12, 78 - 1 - 12


def _b_encoded_subject(subject: str) -> bytes | None:
    """`SMTP_POLICY.fold_binary("Subject", Header(subject, "utf-8"))` when the charset picks
    base64 for it (shorter than quoted-printable, as for any Japanese subject), byte for
    byte, in linear time: the stdlib re-encodes the growing line after every character to
    find where an encoded word is full (`Charset.header_encode_lines`). None for what it
    handles otherwise (quoted-printable, several lines, empty, unencodable)."""
    if not subject or subject.splitlines() != [subject]:
        return None
    try:
        raw = subject.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if not base64mime.header_length(raw) < quoprimime.header_length(raw):
        return None
    words: list[str] = []
    start = size = 0
    room = _FIRST_WORD
    for i, character in enumerate(subject):
        code = ord(character)
        width = 1 if code < 0x80 else 2 if code < 0x800 else 3 if code < 0x10000 else 4
        if (size + width + 2) // 3 * 4 > room:  # the base64 length with this character
            words.append(subject[start:i])
            start, size, room = i, width, _NEXT_WORD
        else:
            size += width
    words.append(subject[start:])
    encoded = b"\r\n ".join(
        b"=?utf-8?b?" + binascii.b2a_base64(word.encode("utf-8"), newline=False) + b"?="
        for word in words
    )
    return b"Subject: " + encoded + _CRLF


def _base64_crlf(data: bytes) -> bytes:
    """`base64.encodebytes(data)` with CRLF line ends (76 characters a line, each 57 bytes
    of data), encoded in one call instead of one per line."""
    encoded = binascii.b2a_base64(data, newline=False)
    if not encoded:
        return b""
    lines = [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
    return _CRLF.join(lines) + _CRLF


@functools.lru_cache(maxsize=4)
def _content_type(length: int) -> bytes:
    """The folded multipart Content-Type for a boundary of `length` characters, with a run
    of "a" in its place: compat32 folds it at the "; " whatever the boundary's characters
    (hex digits and "=", no spaces), so the message's boundary is put in afterwards."""
    value = f'multipart/alternative; boundary="{"a" * length}"'
    return SMTP_POLICY.fold_binary("Content-Type", value)


@functools.lru_cache(maxsize=16)
def _from_header(from_name: str, from_address: str, charset: str) -> bytes:
    return SMTP_POLICY.fold_binary("From", formataddr((from_name, from_address), charset))


def message_bytes(
    *,
    channel_settings: dict[str, Any],
    message: OutboundMessage,
    unsubscribe_url: str = "",
) -> bytes:
    """`serialise(build_message(...))`, byte for byte, without building the MIME objects:
    for UTF-8 (base64 parts) the headers are folded by the same policy, the parts' headers
    and the From header made once, the payloads encoded in one call each. ISO-2022-JP goes
    through `build_message`. (`test_send_cpu.py` compares both on many messages.)"""
    charset = _charset_of(channel_settings)
    if charset != "utf-8":
        return serialise(
            build_message(
                channel_settings=channel_settings, message=message, unsubscribe_url=unsubscribe_url
            )
        )
    rendered = message.rendered
    html = rendered.get("html", "")
    bodies = [(b"plain", _base64_crlf(rendered.get("text", "").encode()))]
    if html:
        bodies.append((b"html", _base64_crlf(html.encode())))
    boundary = _boundary([body.decode("ascii") for _subtype, body in bodies])
    from_address = str(channel_settings.get("from_address", ""))
    domain = from_address.rsplit("@", 1)[-1] or "localhost"
    fold = SMTP_POLICY.fold_binary
    to = (
        formataddr((message.customer_name, message.to), charset)
        if message.customer_name
        else message.to
    )
    out = [
        _content_type(len(boundary)).replace(_PLACEHOLDER * len(boundary), boundary.encode()),
        b"MIME-Version: 1.0\r\n",
        _from_header(str(channel_settings.get("from_name", "")), from_address, charset),
        fold("To", to),
        _subject_header(rendered.get("subject", ""), charset),
        fold("Date", _date(int(time.time()))),
        fold("Message-ID", f"<{message.idempotency_key}.{message.delivery_id}@{domain}>"),
    ]
    if channel_settings.get("reply_to"):
        out.append(fold("Reply-To", str(channel_settings["reply_to"])))
    if unsubscribe_url:
        out.append(fold("List-Unsubscribe", f"<{unsubscribe_url}>"))
        out.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
    out.append(fold("X-Kizuna-Delivery", str(message.delivery_id)))
    out.append(_CRLF)
    mark = b"--" + boundary.encode("ascii")
    for i, (subtype, body) in enumerate(bodies):
        out.append((_CRLF if i else b"") + mark + _CRLF)
        out.append(_part_head(subtype.decode()))
        out.append(body)
    out.append(_CRLF + mark + b"--" + _CRLF)
    return b"".join(out)


def serialise(root: MIMEMultipart) -> bytes:
    """`root.as_bytes(policy=compat32 with CRLF)`, byte for byte, in about half the time."""
    out = io.BytesIO()
    _Generator(out, mangle_from_=False, policy=SMTP_POLICY).flatten(root)
    return out.getvalue()


@functools.lru_cache(maxsize=16)
def _rsa_key(modulus: int, public_exponent: int, private_exponent: int, p: int, q: int) -> Any:
    numbers = rsa.RSAPrivateNumbers(
        p=p,
        q=q,
        d=private_exponent,
        dmp1=rsa.rsa_crt_dmp1(private_exponent, p),
        dmq1=rsa.rsa_crt_dmq1(private_exponent, q),
        iqmp=rsa.rsa_crt_iqmp(p, q),
        public_numbers=rsa.RSAPublicNumbers(public_exponent, modulus),
    )
    return numbers.private_key()


def _rsassa_pkcs1_v1_5_sign(hash: Any, private_key: dict[str, int]) -> bytes:
    """dkimpy's RSA step done by OpenSSL (through `cryptography`) instead of pure-Python
    big-integer arithmetic: the same PKCS#1 v1.5 signature bytes, about 20 times faster."""
    key = _rsa_key(
        private_key["modulus"],
        private_key["publicExponent"],
        private_key["privateExponent"],
        private_key["prime1"],
        private_key["prime2"],
    )
    algorithm = {"sha256": hashes.SHA256(), "sha1": hashes.SHA1()}[hash.name]  # noqa: S303
    return bytes(key.sign(hash.digest(), padding.PKCS1v15(), Prehashed(algorithm)))


# dkimpy has no pluggable signer; its module-level RSA function is replaced once here, and its
# PEM parsing (the same channel key for every message) is memoised. The tests verify every
# signature with dkimpy's own verifier.
dkim.RSASSA_PKCS1_v1_5_sign = _rsassa_pkcs1_v1_5_sign
dkim.parse_pem_private_key = functools.lru_cache(maxsize=16)(dkim.crypto.parse_pem_private_key)


class _Signer(dkim.DKIM):
    """dkimpy's signer, splitting only the header block of a CRLF message into lines: the
    body it would get back from joining its lines with CRLF is the body as it is."""

    def set_message(self, message: bytes) -> None:
        head, blank, body = message.partition(b"\r\n\r\n")
        if (
            not blank
            or body.count(b"\n") != body.count(b"\r\n")
            or b"\n" in head.replace(b"\r\n", b"")
        ):
            super().set_message(message)  # bare LFs: dkimpy's own parsing normalises them
            return
        super().set_message(head + b"\r\n\r\n")
        self.body = body


def dkim_sign(raw: bytes, *, selector: str, domain: str, private_key: str) -> bytes:
    """`dkim.sign(raw, ...)` (RSA-SHA256, relaxed/simple) over the headers we sign that
    the message has: the DKIM-Signature header, prepended."""
    head = raw.split(b"\r\n\r\n", 1)[0].lower()
    headers = [h for h in DKIM_HEADERS if h in head]
    signature = _Signer(raw).sign(
        selector.encode(),
        domain.encode(),
        private_key.encode(),
        canonicalize=(b"relaxed", b"simple"),
        include_headers=headers,
    )
    return bytes(signature) + raw


def envelope_sender(channel_settings: dict[str, Any], delivery_id: int) -> str:
    bounce_domain = str(channel_settings.get("bounce_domain") or "")
    if bounce_domain:
        return links.verp_address(delivery_id, bounce_domain)
    return str(channel_settings.get("from_address", ""))


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The default verifying TLS context, made once per process (loading the system's CA
    store costs about 20 ms) and only when a channel uses TLS."""
    return ssl.create_default_context()


class EmailSession:
    def __init__(self, channel: Channel) -> None:
        self.settings = dict(channel.settings)
        self.secrets = crypto.decrypt(channel.credentials_encrypted)
        for key in ("host", "from_address"):
            if not self.settings.get(key):
                raise ChannelConfigError(f"the email channel has no {key}")
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        host = str(self.settings["host"])
        port = int(self.settings.get("port") or 25)
        security = str(self.settings.get("security") or "none")  # none | starttls | tls
        timeout = float(self.settings.get("timeout") or 30)
        # The EHLO name: set, so smtplib does not resolve the machine's FQDN on each connect.
        helo = str(self.settings.get("helo") or self.settings["from_address"].split("@")[-1])
        if security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                host, port, timeout=timeout, context=_tls_context(), local_hostname=helo
            )
        else:
            smtp = smtplib.SMTP(host, port, timeout=timeout, local_hostname=helo)
            if security == "starttls":
                smtp.starttls(context=_tls_context())
        if self.secrets.get("username"):
            smtp.login(str(self.secrets["username"]), str(self.secrets.get("password", "")))
        return smtp

    def prepare(self, message: OutboundMessage) -> tuple[str, bytes]:
        unsub = links.unsubscribe_url(message.delivery_id) if message.marketing else ""
        raw = message_bytes(channel_settings=self.settings, message=message, unsubscribe_url=unsub)
        key = self.secrets.get("dkim_private_key")
        if key and self.settings.get("dkim_selector"):
            domain = str(
                self.settings.get("dkim_domain")
                or str(self.settings["from_address"]).split("@")[-1]
            )
            raw = dkim_sign(
                raw, selector=str(self.settings["dkim_selector"]), domain=domain, private_key=key
            )
        return envelope_sender(self.settings, message.delivery_id), raw

    def send(self, message: OutboundMessage) -> Outcome:
        sender, raw = self.prepare(message)
        try:
            if self._smtp is None:
                self._smtp = self._connect()
            refused = self._smtp.sendmail(sender, [message.to], raw)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            self._reset()
            return Outcome(ok=False, temporary=400 <= code < 500, reason=f"{code} {text!r}"[:300])
        except smtplib.SMTPResponseException as exc:
            self._reset()
            temporary = 400 <= exc.smtp_code < 500
            return Outcome(
                ok=False,
                temporary=temporary,
                reason=f"{exc.smtp_code} {exc.smtp_error!r}"[:300],
                channel_fault=temporary,  # the session (MAIL/DATA/connect), not a recipient
            )
        except (OSError, smtplib.SMTPException) as exc:  # refused, hung (timeout), dropped
            self._reset()
            return Outcome(
                ok=False,
                temporary=True,
                reason=f"{type(exc).__name__}: {exc}"[:300],
                channel_fault=True,
            )
        if refused:
            return Outcome(ok=False, temporary=False, reason=str(refused)[:300])
        message_id = raw.split(b"Message-ID: ", 1)[1].split(b"\r\n", 1)[0].decode()
        return Outcome(ok=True, provider_id=message_id)

    def _reset(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.close()
            finally:
                self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None
