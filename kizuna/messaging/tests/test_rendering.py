"""Templates: the sandbox, unknown variables, errors that name the line, MJML, CSS inlining,
the plain-text part, Flex JSON escaping, ISO-2022-JP checks, per-locale variants, preview."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from kizuna.messaging import context as message_context
from kizuna.messaging import rendering, services
from kizuna.messaging.models import Template
from kizuna.messaging.tests.conftest import NEWSLETTER_MJML, make_customer


def _render(body: str, ctx: dict, fmt: str = "html", subject: str = "") -> rendering.Rendered:
    return rendering.render(body_format=fmt, subject=subject, body=body, context=ctx)


def test_unknown_variable_is_an_error_naming_the_line() -> None:
    with pytest.raises(rendering.RenderError) as err:
        _render("<p>hello</p>\n<p>{{ customer.nmae }}</p>", {"customer": {"name": "花子"}})
    assert err.value.part == "body" and err.value.line == 2
    assert "nmae" in str(err.value) and "line 2" in str(err.value)


def test_mjml_errors_name_the_line_of_the_mjml_source() -> None:
    source = NEWSLETTER_MJML.replace("{{ customer.name }}", "{{ customer.nmae }}")
    with pytest.raises(rendering.RenderError) as err:
        _render(source, {"customer": {"name": "x"}}, fmt="mjml")
    assert err.value.line == 5  # the mj-text line, not a line of the compiled HTML


def test_syntax_error_names_the_line() -> None:
    with pytest.raises(rendering.RenderError) as err:
        _render("line one\nline two\n{% if x %}never closed", {"x": 1}, fmt="text")
    assert err.value.line == 3
    assert "line 3" in str(err.value)


@pytest.mark.parametrize(
    "source",
    [
        "{{ customer.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ customer.items() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ name.format_map({}) }}",
    ],
)
def test_sandbox_blocks_attributes_outside_the_allow_list(source: str) -> None:
    with pytest.raises(rendering.RenderError):
        _render(source, {"customer": {"name": "x"}, "name": "x"}, fmt="text")


def test_allowed_string_helpers_and_filters() -> None:
    out = _render("{{ name.upper() }} {{ price|yen }}", {"name": "kizuna", "price": 12800}, "text")
    assert out.text == "KIZUNA ¥12,800"
    assert out.line_messages == [{"type": "text", "text": "KIZUNA ¥12,800"}]


def test_html_autoescapes_customer_data() -> None:
    out = _render("<p>{{ customer.name }}</p>", {"customer": {"name": "<script>x</script>"}})
    assert "<script>" not in out.html and "&lt;script&gt;" in out.html


def test_mjml_compiles_inlines_css_and_makes_a_text_part() -> None:
    out = _render(NEWSLETTER_MJML, {"customer": {"name": "山田 花子"}}, fmt="mjml", subject="件名")
    assert out.subject == "件名"
    assert "<mj-" not in out.html and "山田 花子様、こんにちは。" in out.html
    assert "color: #7c4a2d" in out.html  # the mj-style rule inlined on the element
    assert "山田 花子様、こんにちは。" in out.text and "<td" not in out.text
    assert "https://shop.example.jp/sale?utm=mail&x=1" in out.text


def test_flex_json_escapes_values_and_reports_bad_json() -> None:
    body = (
        '{"type": "bubble", "body": {"type": "box", "layout": "vertical", '
        '"contents": [{"type": "text", "text": "{{ customer.name }}"}]}}'
    )
    out = _render(body, {"customer": {"name": 'say "hi"\n'}}, fmt="flex", subject="alt")
    (message,) = out.line_messages
    assert message["type"] == "flex" and message["altText"] == "alt"
    assert message["contents"]["body"]["contents"][0]["text"] == 'say "hi"\n'
    with pytest.raises(rendering.RenderError) as err:
        _render('{\n"type": "bubble",,\n}', {}, fmt="flex")
    assert err.value.line == 2


def test_unencodable_names_each_character_once() -> None:
    assert rendering.unencodable("髙橋様①①～ です", "iso-2022-jp") == ["髙", "①", "～"]
    assert rendering.unencodable("髙橋", "utf-8") == []


def test_link_rewriting_only_touches_http_links() -> None:
    html = '<a href="https://a.example/x?a=1&amp;b=2">a</a> <a href="mailto:x@y">m</a>'
    out = rendering.rewrite_links(html, lambda url: f"T[{url}]")
    assert 'href="T[https://a.example/x?a=1&b=2]"' in out and 'href="mailto:x@y"' in out


@pytest.mark.django_db
def test_template_save_rejects_bad_variants_by_field_and_saves_nothing() -> None:
    with pytest.raises(ValidationError) as err:
        services.template_save(
            slug="broken",
            name="Broken",
            channel_kind="email",
            body_format="html",
            variants={
                "ja": {"subject": "{{ oops", "body": "<p>ok</p>"},
                "en": {"subject": "fine", "body": "<p>\n{% for %}</p>"},
                "fr": {"subject": "", "body": "x"},
            },
        )
    errors = err.value.message_dict
    assert "line 1" in errors["variants.ja.subject"][0]
    assert "line 2" in errors["variants.en.body"][0]
    assert "variants.fr" in errors
    assert not Template.objects.exists()
    with pytest.raises(ValidationError) as err:
        services.template_save(
            slug="x", name="x", channel_kind="line", body_format="mjml", variants={}
        )
    assert set(err.value.message_dict) == {"body_format", "variants"}


@pytest.mark.django_db
def test_preview_uses_the_customer_locale_and_registered_providers(newsletter) -> None:
    message_context.register_provider("coupon", lambda c: {"code": f"WELCOME-{c.pk}"})
    try:
        template = services.template_save(
            slug="coupon",
            name="Coupon",
            channel_kind="line",
            body_format="text",
            variants={
                "ja": {"subject": "", "body": "{{ customer.name }}さん {{ coupon.code }}"},
                "en": {"subject": "", "body": "Hi {{ customer.given_name }} {{ coupon.code }}"},
            },
        )
        ja = make_customer("a@example.jp", opt_in=False)
        en = make_customer("b@example.com", opt_in=False, locale="en", given_name="Ann")
        assert services.render_for(template=template, customer=ja).text == (
            f"山田 花子さん WELCOME-{ja.pk}"
        )
        assert services.render_for(template=template, customer=en).text == f"Hi Ann WELCOME-{en.pk}"
        preview = services.render_for(template=newsletter, customer=en)
        assert preview.subject == "Autumn sale for Ann"
        assert "/t/o/" not in preview.html  # a preview is not tracked
    finally:
        message_context._providers.pop("coupon", None)
