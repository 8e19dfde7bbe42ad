"""Console pages of messaging: deliveries (with status history), channels (credentials are
write-only), the template editor with live preview for a chosen customer and test send, and
the suppression list."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from typing import Any, cast

from csp.decorators import csp
from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.clickjacking import xframe_options_sameorigin
from django.views.decorators.http import require_POST

from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.customers.models import Customer
from kizuna.iam.masking import known_names, mask_free_text, masks_personal_data
from kizuna.messaging import rendering, selectors, services
from kizuna.messaging.choices import BodyFormat, ChannelKind, Purpose, Status, SuppressionReason
from kizuna.messaging.models import Channel, Template

PREVIEW_TTL = 600

# Channel settings shown in the form, per kind: (key, label, secret?)
CHANNEL_FIELDS: dict[str, list[tuple[str, Any, bool]]] = {
    ChannelKind.EMAIL: [
        ("host", gettext_lazy("SMTP host"), False),
        ("port", gettext_lazy("SMTP port"), False),
        ("security", gettext_lazy("Security (none, starttls, tls)"), False),
        ("from_address", gettext_lazy("From address"), False),
        ("from_name", gettext_lazy("Sender name"), False),
        ("physical_address", gettext_lazy("Sender's postal address"), False),
        ("contact", gettext_lazy("Contact (email or phone)"), False),
        ("reply_to", gettext_lazy("Reply-To"), False),
        ("charset", gettext_lazy("Charset (utf-8 or iso-2022-jp)"), False),
        ("dkim_selector", gettext_lazy("DKIM selector"), False),
        ("dkim_domain", gettext_lazy("DKIM domain"), False),
        ("bounce_domain", gettext_lazy("Bounce (VERP) domain"), False),
        ("username", gettext_lazy("SMTP user name"), True),
        ("password", gettext_lazy("SMTP password"), True),
        ("dkim_private_key", gettext_lazy("DKIM private key (PEM)"), True),
        ("inbound_token", gettext_lazy("Bounce endpoint token"), True),
    ],
    ChannelKind.LINE: [
        ("host", gettext_lazy("API host (blank: api.line.me)"), False),
        ("access_token", gettext_lazy("Channel access token"), True),
        ("channel_secret", gettext_lazy("Channel secret"), True),
    ],
    ChannelKind.WEBHOOK: [
        ("url", gettext_lazy("Receiver URL"), False),
        ("secret", gettext_lazy("Signing secret"), True),
    ],
}


class ChannelForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)

    def __init__(self, *args: Any, kind: str, stored_secrets: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kind = kind
        for key, label, secret in CHANNEL_FIELDS[kind]:
            if secret:
                help_text = _("Stored — leave blank to keep.") if key in stored_secrets else ""
                widget: forms.Widget = forms.PasswordInput(render_value=False)
                if key == "dkim_private_key":
                    widget = forms.Textarea(attrs={"rows": 3, "autocomplete": "off"})
                self.fields[f"secret_{key}"] = forms.CharField(
                    label=label, required=False, widget=widget, help_text=help_text
                )
            else:
                self.fields[f"setting_{key}"] = forms.CharField(
                    label=label, required=False, max_length=500
                )

    def settings_data(self) -> dict[str, Any]:
        data = {}
        for key, _label, secret in CHANNEL_FIELDS[self.kind]:
            if not secret:
                value = self.cleaned_data.get(f"setting_{key}") or ""
                data[key] = int(value) if key == "port" and value.isdigit() else value
        return data

    def credentials_data(self) -> dict[str, Any]:
        return {
            key: self.cleaned_data[f"secret_{key}"]
            for key, _label, secret in CHANNEL_FIELDS[self.kind]
            if secret and self.cleaned_data.get(f"secret_{key}")
        }


class TemplateForm(forms.Form):
    slug = forms.SlugField(label=gettext_lazy("Key"), max_length=80)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    channel_kind = forms.ChoiceField(label=gettext_lazy("Channel"), choices=ChannelKind.choices)
    body_format = forms.ChoiceField(label=gettext_lazy("Format"), choices=BodyFormat.choices)
    purpose = forms.ChoiceField(label=gettext_lazy("Purpose"), choices=Purpose.choices)
    topic = forms.CharField(label=gettext_lazy("Topic"), required=False, max_length=50)
    subject_ja = forms.CharField(label=gettext_lazy("Subject (Japanese)"), required=False)
    body_ja = forms.CharField(
        label=gettext_lazy("Body (Japanese)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "class": "code"}),
    )
    subject_en = forms.CharField(label=gettext_lazy("Subject (English)"), required=False)
    body_en = forms.CharField(
        label=gettext_lazy("Body (English)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 14, "class": "code"}),
    )
    preview_customer = forms.IntegerField(
        label=gettext_lazy("Preview for customer #"), required=False
    )
    preview_locale = forms.ChoiceField(
        label=gettext_lazy("Preview language"),
        choices=[("ja", "日本語"), ("en", "English")],
        required=False,
    )

    def variants(self) -> dict[str, dict[str, str]]:
        data = self.cleaned_data
        return {
            locale: {"subject": data.get(f"subject_{locale}", ""), "body": data[f"body_{locale}"]}
            for locale in ("ja", "en")
            if (data.get(f"body_{locale}") or "").strip()
        }


class TestSendForm(forms.Form):
    channel = forms.ModelChoiceField(queryset=Channel.objects.none(), label=gettext_lazy("Channel"))
    customer = forms.IntegerField(label=gettext_lazy("Render for customer #"))
    to = forms.CharField(
        label=gettext_lazy("Send to (email address or LINE user ID)"), max_length=255
    )


class SuppressionForm(forms.Form):
    channel_kind = forms.ChoiceField(label=gettext_lazy("Channel"), choices=ChannelKind.choices)
    address = forms.CharField(label=gettext_lazy("Address"), max_length=255)
    reason = forms.ChoiceField(
        label=gettext_lazy("Reason"),
        choices=SuppressionReason.choices,
        initial=SuppressionReason.MANUAL,
    )
    note = forms.CharField(label=gettext_lazy("Note"), required=False, max_length=300)


def _errors_to_form(form: forms.Form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        target = None
        if field in form.fields:
            target = field
        elif field.startswith("variants."):
            parts = field.split(".")
            name = f"{parts[2]}_{parts[1]}" if len(parts) == 3 else None
            target = name if name in form.fields else None
        elif field.startswith(("settings.", "credentials.")):
            prefix = "setting_" if field.startswith("settings.") else "secret_"
            name = prefix + field.split(".", 1)[1]
            target = name if name in form.fields else None
        for error in errors:
            form.add_error(target, f"{field}: {error}" if target is None else error)


# --- deliveries ---------------------------------------------------------------------------


@staff_required("messaging.view_delivery")
def deliveries(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or ""
    if status not in Status.values:
        status = ""
    qs = selectors.delivery_list(status=status or None)
    return render(
        request,
        "console/messaging/deliveries.html",
        {
            "page": _page(request, qs),
            "status": status,
            "statuses": Status.choices,
            "counts": selectors.delivery_status_counts(),
        },
    )


@staff_required("messaging.view_delivery")
def delivery_detail(request: HttpRequest, delivery_id: int) -> HttpResponse:
    try:
        delivery = selectors.delivery_get(delivery_id=delivery_id)
    except NotFound as exc:
        raise Http404 from exc
    return render(
        request,
        "console/messaging/delivery_detail.html",
        {"delivery": delivery, "history": selectors.delivery_history(delivery=delivery)},
    )


# --- channels -----------------------------------------------------------------------------


@staff_required("messaging.view_channel")
def channels(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/messaging/channels.html",
        {"channels": selectors.channel_list(), "kinds": ChannelKind.choices},
    )


@staff_required("messaging.view_channel")
def channel_edit(
    request: HttpRequest, channel_id: int | None = None, kind: str | None = None
) -> HttpResponse:
    channel = None
    if channel_id is not None:
        try:
            channel = selectors.channel_get(channel_id=channel_id)
        except NotFound as exc:
            raise Http404 from exc
        kind = channel.kind
    if kind not in ChannelKind.values:
        raise Http404
    assert kind is not None
    stored = services.channel_secret_keys(channel) if channel else []
    if request.method == "POST":
        perm = "messaging.change_channel" if channel else "messaging.add_channel"
        if not request.user.has_perm(perm):
            return HttpResponse(status=403)
        form = ChannelForm(request.POST, kind=kind, stored_secrets=stored)
        if form.is_valid():
            try:
                saved = services.channel_save(
                    kind=kind,
                    name=form.cleaned_data["name"],
                    settings=form.settings_data(),
                    credentials=form.credentials_data(),
                    active=form.cleaned_data["active"],
                    channel=channel,
                    actor=_staff(request),
                )
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, _("Channel saved."))
                return redirect("console:messaging_channel", channel_id=saved.pk)
    else:
        initial: dict[str, Any] = {"active": True}
        if channel:
            initial = {"name": channel.name, "active": channel.active}
            initial.update({f"setting_{k}": v for k, v in channel.settings.items()})
        form = ChannelForm(initial=initial, kind=kind, stored_secrets=stored)
    return render(
        request,
        "console/messaging/channel_form.html",
        {"form": form, "channel": channel, "kind": kind, "stored": stored},
    )


# --- templates ----------------------------------------------------------------------------


@staff_required("messaging.view_template")
def templates(request: HttpRequest) -> HttpResponse:
    return render(
        request, "console/messaging/templates.html", {"templates": selectors.template_list()}
    )


def _template_initial(template: Template) -> dict[str, Any]:
    initial: dict[str, Any] = {
        "slug": template.slug,
        "name": template.name,
        "channel_kind": template.channel_kind,
        "body_format": template.body_format,
        "purpose": template.purpose,
        "topic": template.topic,
    }
    for variant in template.variants.all():
        initial[f"subject_{variant.locale}"] = variant.subject
        initial[f"body_{variant.locale}"] = variant.body
    return initial


@staff_required("messaging.view_template")
def template_edit(request: HttpRequest, template_id: int | None = None) -> HttpResponse:
    template = None
    if template_id is not None:
        try:
            template = selectors.template_get(template_id=template_id)
        except NotFound as exc:
            raise Http404 from exc
    if request.method == "POST":
        perm = "messaging.change_template" if template else "messaging.add_template"
        if not request.user.has_perm(perm):
            return HttpResponse(status=403)
        form = TemplateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                saved = services.template_save(
                    slug=data["slug"],
                    name=data["name"],
                    channel_kind=data["channel_kind"],
                    body_format=data["body_format"],
                    purpose=data["purpose"],
                    topic=data["topic"],
                    variants=form.variants(),
                    template=template,
                    actor=_staff(request),
                )
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, _("Template saved."))
                return redirect("console:messaging_template", template_id=saved.pk)
    else:
        form = TemplateForm(initial=_template_initial(template) if template else {})
    test_form = TestSendForm()
    test_form.fields["channel"].queryset = Channel.objects.filter(  # type: ignore[attr-defined]
        kind=template.channel_kind if template else "email", active=True
    )
    return render(
        request,
        "console/messaging/template_form.html",
        {"form": form, "template": template, "test_form": test_form},
    )


@staff_required("messaging.view_template")
@require_POST
def template_preview(request: HttpRequest) -> HttpResponse:
    """The live preview (HTMX): render the unsaved form for the chosen customer."""
    form = TemplateForm(request.POST)
    context: dict[str, Any] = {}
    if not form.is_valid():
        context["error"] = "; ".join(
            f"{k}: {' '.join(str(e) for e in v)}" for k, v in form.errors.items()
        )
        return render(request, "console/messaging/_preview.html", context)
    data = form.cleaned_data
    customer = Customer.objects.filter(pk=data.get("preview_customer") or 0).first()
    if customer is None:
        customer = Customer.objects.order_by("id").first()
    if customer is None:
        context["error"] = _("There is no customer to preview for yet.")
        return render(request, "console/messaging/_preview.html", context)
    locale = data.get("preview_locale") or customer.locale
    variants = form.variants()
    variant = variants.get(locale) or next(iter(variants.values()), None)
    if variant is None:
        context["error"] = _("Write a body first.")
        return render(request, "console/messaging/_preview.html", context)
    draft = Template(
        slug="preview",
        channel_kind=data["channel_kind"],
        body_format=data["body_format"],
        purpose=data["purpose"],
    )
    try:
        result = services.render_draft(
            template=draft, subject=variant["subject"], body=variant["body"], customer=customer
        )
    except rendering.RenderError as exc:
        context["error"] = str(exc)
        context["error_line"] = exc.line
    else:
        if masks_personal_data(request.user):  # masked roles: contacts and names masked
            known = known_names(customer)
            result = dataclasses.replace(
                result,
                **{
                    f: mask_free_text(getattr(result, f), known)
                    for f in ("subject", "html", "text", "line_messages", "payload")
                },
            )
        context["result"] = result
        if result.html:
            key = secrets.token_urlsafe(16)
            cache.set(f"kizuna:preview:{key}", result.html, PREVIEW_TTL)
            context["frame_key"] = key
    context["customer"] = customer
    return render(request, "console/messaging/_preview.html", context)


_PREVIEW_CSP = csp(
    {
        "default-src": ["'none'"],
        "style-src": ["'unsafe-inline'"],
        "img-src": ["'self'", "https:", "data:"],
        "frame-ancestors": ["'self'"],
        "sandbox": True,
    }
)


def _preview_frame(request: HttpRequest, key: str) -> HttpResponse:
    """The rendered email HTML for the preview iframe: inline styles allowed, no scripts,
    sandboxed, only framed by the console itself."""
    html = cache.get(f"kizuna:preview:{key}")
    if html is None:
        raise Http404
    return HttpResponse(html)


# staff only; the frame may be shown by the console alone, with its own CSP.
template_preview_frame = staff_required("messaging.view_template")(
    cast(
        Callable[..., HttpResponse],
        xframe_options_sameorigin(_PREVIEW_CSP(cast(Any, _preview_frame))),
    )
)


@staff_required("messaging.add_delivery")
@require_POST
def template_test_send(request: HttpRequest, template_id: int) -> HttpResponse:
    try:
        template = selectors.template_get(template_id=template_id)
    except NotFound as exc:
        raise Http404 from exc
    form = TestSendForm(request.POST)
    form.fields["channel"].queryset = Channel.objects.filter(  # type: ignore[attr-defined]
        kind=template.channel_kind
    )
    if not form.is_valid():
        for field, field_errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(str(e) for e in field_errors)}")
        return redirect("console:messaging_template", template_id=template.pk)
    customer = Customer.objects.filter(pk=form.cleaned_data["customer"]).first()
    if customer is None:
        messages.error(request, _("No customer with this number."))
        return redirect("console:messaging_template", template_id=template.pk)
    try:
        delivery = services.test_send(
            template=template,
            channel=form.cleaned_data["channel"],
            customer=customer,
            to_address=form.cleaned_data["to"],
            actor=_staff(request),
        )
    except ValidationError as exc:
        for field, problems in exc.message_dict.items():
            messages.error(request, f"{field}: {' '.join(problems)}")
        return redirect("console:messaging_template", template_id=template.pk)
    messages.success(request, _("Test message queued."))
    return redirect("console:messaging_delivery", delivery_id=delivery.pk)


# --- suppression ----------------------------------------------------------------------------


@staff_required("messaging.view_suppression")
def suppressions(request: HttpRequest) -> HttpResponse:
    form = SuppressionForm()
    if request.method == "POST":
        if not request.user.has_perm("messaging.add_suppression"):
            return HttpResponse(status=403)
        form = SuppressionForm(request.POST)
        if form.is_valid():
            try:
                services.suppression_add(**form.cleaned_data, actor=_staff(request))
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, _("Address added to the suppression list."))
                return redirect("console:messaging_suppressions")
    return render(
        request,
        "console/messaging/suppressions.html",
        {"form": form, "page": _page(request, selectors.suppression_list())},
    )


# --- customer 360 ---------------------------------------------------------------------------


def messaging_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    return {"deliveries": selectors.customer_deliveries(customer=customer)}


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="messaging",
            template="console/messaging/_panel.html",
            context=messaging_panel,
            permission="messaging.view_delivery",
            order=50,
        )
    )


# --- live send panel (lanes) ----------------------------------------------------------------


@staff_required("messaging.view_delivery")
def sending(request: HttpRequest) -> HttpResponse:
    """Per lane: throughput, backlog, ETA, final states, errors, breakers; the panel polls
    its own fragment (htmx) every few seconds while the page is open."""
    context = {"panels": selectors.send_panels()}
    if request.headers.get("HX-Request"):
        return render(request, "console/messaging/_sending.html", context)
    return render(request, "console/messaging/sending.html", context)


@require_POST
@staff_required("messaging.change_channel")
def sending_control(request: HttpRequest) -> HttpResponse:
    """Pause or resume a lane; close a channel's breaker by hand."""
    action = request.POST.get("action", "")
    lane = request.POST.get("lane", "")
    try:
        if action == "pause":
            services.send_hold(key=f"lane:{lane}", actor=_staff(request))
            messages.success(request, _("Lane paused: its queued messages wait."))
        elif action == "resume":
            services.send_release(key=f"lane:{lane}", actor=_staff(request))
            messages.success(request, _("Lane resumed."))
        elif action == "reset_breaker":
            services.breaker_reset(channel_id=int(request.POST.get("channel", "0") or 0))
            messages.success(request, _("Breaker closed: deferred messages are queued again."))
        else:
            messages.error(request, _("Unknown action."))
    except (ValidationError, ValueError):
        messages.error(request, _("Choose a lane or a channel."))
    return redirect("console:messaging_sending")
