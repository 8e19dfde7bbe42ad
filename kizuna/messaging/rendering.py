"""Rendering staff-authored templates: a sandboxed Jinja2 environment (attribute access only
from an allow-list, unknown variables are errors), MJML compiled once per variant, CSS
inlined, a plain-text part made from the HTML, and errors that name the line."""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from typing import Any

import css_inline
import html2text
import mjml
from jinja2 import StrictUndefined, TemplateError, TemplateSyntaxError, UndefinedError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from markupsafe import Markup

from kizuna.messaging.choices import BodyFormat

# The only attributes a template may read on Python objects: string helpers. Data comes as
# dicts, read with `customer.name` (item access, always allowed).
SAFE_ATTRIBUTES: dict[type, frozenset[str]] = {
    str: frozenset({"upper", "lower", "title", "capitalize", "strip", "startswith", "endswith"}),
    dict: frozenset({"get"}),
}


class RenderError(Exception):
    """A template cannot be rendered; `line` is the 1-based line in `part` when known."""

    def __init__(self, message: str, *, part: str, line: int | None = None) -> None:
        self.message, self.part, self.line = message, part, line
        where = f"{part}, line {line}" if line else part
        super().__init__(f"{where}: {message}")


class KizunaSandbox(SandboxedEnvironment):
    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        allowed = SAFE_ATTRIBUTES.get(type(obj))
        return bool(allowed and attr in allowed)

    def wrap_str_format(self, value: Any) -> None:
        # str.format / format_map are not on the allow-list at all (not even sandboxed).
        return None


def _yen(value: Any) -> str:
    try:
        return f"¥{int(value):,}"
    except (TypeError, ValueError):
        return str(value)


@functools.cache
def environment(autoescape: bool) -> KizunaSandbox:
    env = KizunaSandbox(
        undefined=StrictUndefined, autoescape=autoescape, keep_trailing_newline=True
    )
    env.filters["yen"] = _yen
    return env


def _line_of(exc: BaseException, name: str) -> int | None:
    lineno = getattr(exc, "lineno", None)
    if isinstance(exc, TemplateSyntaxError) and lineno:
        return int(lineno)
    tb = exc.__traceback__
    found = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == name:
            found = tb.tb_lineno
        tb = tb.tb_next
    return found


@functools.lru_cache(maxsize=512)
def compile_template(source: str, part: str, autoescape: bool) -> Any:
    try:
        return environment(autoescape).from_string(source) if source else None
    except TemplateSyntaxError as exc:
        raise RenderError(exc.message or str(exc), part=part, line=exc.lineno) from exc


def render_string(source: str, context: dict[str, Any], *, part: str, autoescape: bool) -> str:
    template = compile_template(source, part, autoescape)
    if template is None:
        return ""
    try:
        return str(template.render(context))
    except SecurityError as exc:
        raise RenderError(str(exc), part=part, line=_line_of(exc, "<template>")) from exc
    except UndefinedError as exc:
        raise RenderError(
            exc.message or str(exc), part=part, line=_line_of(exc, "<template>")
        ) from exc
    except TemplateError as exc:
        raise RenderError(str(exc), part=part, line=_line_of(exc, "<template>")) from exc
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise RenderError(str(exc), part=part, line=_line_of(exc, "<template>")) from exc


@functools.lru_cache(maxsize=256)
def mjml_compile(source: str) -> str:
    """MJML → HTML once per variant source; the Jinja tags in it pass through untouched."""
    result = mjml.mjml_to_html(source)
    if result.errors:
        raise RenderError("; ".join(str(e) for e in result.errors), part="body")
    return str(result.html)


_inliner = css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


@functools.lru_cache(maxsize=256)
def email_body_source(source: str, body_format: str) -> str:
    """The HTML Jinja source of an email body: MJML compiled, CSS inlined (Jinja tags kept)."""
    html = mjml_compile(source) if body_format == BodyFormat.MJML else source
    try:
        return str(_inliner.inline(html))
    except ValueError as exc:
        raise RenderError(str(exc), part="body") from exc


def html_to_text(html: str) -> str:
    # A converter per call: HTML2Text keeps parser state on the instance, so one shared by the
    # sending threads of a worker corrupted each other's parse (html.parser AssertionError).
    maker = html2text.HTML2Text()
    maker.body_width = 0
    maker.ignore_images = True
    maker.unicode_snob = True
    maker.ignore_tables = True  # MJML lays out with tables: keep only their text
    maker.single_line_break = True
    return str(maker.handle(html)).strip() + "\n"


@functools.lru_cache(maxsize=256)
def email_text_source(source: str, body_format: str) -> str | None:
    """The plain-text part as a template: html2text run once over the HTML source (the Jinja
    tags are plain text to it), so each message renders text without parsing HTML again.
    None when the conversion would not survive as a template (then each message converts)."""
    text = html_to_text(email_body_source(source, body_format))
    try:
        compile_template(text, "text", False)
    except RenderError:
        return None
    return text


def _text_part(source: str, body_format: str, html: str, context: dict[str, Any]) -> str:
    text_source = email_text_source(source, body_format)
    if text_source is not None:
        try:
            return render_string(text_source, context, part="text", autoescape=False)
        except RenderError:
            pass
    return html_to_text(html)


_HREF = re.compile(r'(<a\b[^>]*?\bhref=")(https?://[^"]+)(")', re.IGNORECASE)


def rewrite_links(html: str, wrap: Any) -> str:
    """Point every http(s) link at the click redirect (`wrap(url) -> url`)."""
    return _HREF.sub(lambda m: f"{m.group(1)}{wrap(_unescape(m.group(2)))}{m.group(3)}", html)


def _unescape(url: str) -> str:
    return url.replace("&amp;", "&")


@dataclass
class Rendered:
    subject: str = ""
    html: str = ""
    text: str = ""
    line_messages: list[dict[str, Any]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for key in ("subject", "html", "text"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        if self.line_messages:
            data["line_messages"] = self.line_messages
        if self.payload:
            data["payload"] = self.payload
        return data


def render(*, body_format: str, subject: str, body: str, context: dict[str, Any]) -> Rendered:
    """Render one variant for one context. Raises RenderError naming the part and line."""
    subject_out = render_string(subject, context, part="subject", autoescape=False).strip()
    if body_format in (BodyFormat.MJML, BodyFormat.HTML):
        try:
            html = render_string(
                email_body_source(body, body_format), context, part="body", autoescape=True
            )
        except RenderError as exc:
            if body_format == BodyFormat.MJML:
                # Name the line of the MJML the author wrote, not of the compiled HTML.
                render_string(body, context, part="body", autoescape=True)
            raise exc
        return Rendered(
            subject=subject_out, html=html, text=_text_part(body, body_format, html, context)
        )
    if body_format == BodyFormat.TEXT:
        text = render_string(body, context, part="body", autoescape=False)
        return Rendered(
            subject=subject_out, text=text, line_messages=[{"type": "text", "text": text.strip()}]
        )
    if body_format in (BodyFormat.FLEX, BodyFormat.JSON, BodyFormat.IMAGE):
        raw = render_string(body, _json_safe(context), part="body", autoescape=False)
        if body_format == BodyFormat.IMAGE:
            url = raw.strip()
            if not url.startswith("https://"):
                raise RenderError("an image message needs an https:// URL", part="body")
            image = {"type": "image", "originalContentUrl": url, "previewImageUrl": url}
            return Rendered(subject=subject_out, line_messages=[image])
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise RenderError(f"not valid JSON: {exc.msg}", part="body", line=exc.lineno) from exc
        if not isinstance(data, dict):
            raise RenderError("the JSON must be an object", part="body")
        if body_format == BodyFormat.JSON:
            return Rendered(subject=subject_out, payload=data)
        flex = {"type": "flex", "altText": subject_out or "message", "contents": data}
        return Rendered(subject=subject_out, line_messages=[flex])
    raise RenderError(f"unknown format {body_format!r}", part="body")


def _json_safe(context: dict[str, Any]) -> dict[str, Any]:
    """Values inserted into JSON are JSON-escaped (`{{ customer.name }}` inside quotes)."""

    def escape(value: Any) -> Any:
        if isinstance(value, str):
            # JSON-escaped above, so it is safe inside a JSON string literal.
            return Markup(json.dumps(value, ensure_ascii=False)[1:-1])  # noqa: S704
        if isinstance(value, dict):
            return {k: escape(v) for k, v in value.items()}
        if isinstance(value, list):
            return [escape(v) for v in value]
        return value

    return {k: escape(v) for k, v in context.items()}


def unencodable(text: str, charset: str) -> list[str]:
    """The distinct characters of `text` that `charset` cannot encode, in order."""
    if charset.lower() in ("utf-8", "utf8"):
        return []
    bad: list[str] = []
    for char in text:
        if char in bad:
            continue
        try:
            char.encode(charset)
        except UnicodeEncodeError:
            bad.append(char)
    return bad
