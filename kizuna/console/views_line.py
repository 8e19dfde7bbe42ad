"""Console pages of LINE marketing: audiences uploaded from segments (with LINE's status),
narrowcasts composed from a Flex template to an audience or a segment (with LINE's progress),
and rich menus (created from a layout, linked to a segment or a loyalty tier, made the
default). Every write goes through `kizuna.line_marketing.services`."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from kizuna.catalog.models import Product
from kizuna.console.views import _page, _staff, staff_required
from kizuna.line_marketing import flex, richmenus, services
from kizuna.line_marketing.models import LineAudience, Narrowcast, RichMenu
from kizuna.loyalty.models import Tier
from kizuna.messaging.models import Channel
from kizuna.segments.models import Segment

TEMPLATE_CHOICES = [
    ("coupon", gettext_lazy("Coupon (Flex)")),
    ("recommendations", gettext_lazy("Products (Flex carousel)")),
    ("text", gettext_lazy("Text")),
]


def _line_channels() -> Any:
    return Channel.objects.filter(kind="line", active=True).order_by("name")


def _errors(request: HttpRequest, exc: ValidationError, form: forms.Form | None = None) -> None:
    """Field errors onto the form's fields when it has them, else as messages."""
    for field, errors in exc.message_dict.items():
        for error in errors:
            if form is not None and field in form.fields:
                form.add_error(field, error)
            elif form is not None:
                form.add_error(None, f"{field}: {error}")
            else:
                messages.error(request, f"{field}: {error}")


class AudienceForm(forms.Form):
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.none(), label=gettext_lazy("LINE channel")
    )
    segment = forms.ModelChoiceField(queryset=Segment.objects.none(), label=gettext_lazy("Segment"))
    description = forms.CharField(
        label=gettext_lazy("Description (blank: the segment's name)"),
        max_length=120,
        required=False,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = _line_channels()  # type: ignore[attr-defined]
        self.fields["segment"].queryset = Segment.objects.order_by("name")  # type: ignore[attr-defined]


class NarrowcastForm(forms.Form):
    audience = forms.ModelChoiceField(
        queryset=LineAudience.objects.none(),
        label=gettext_lazy("To an uploaded audience"),
        required=False,
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(),
        label=gettext_lazy("Or to a segment (uploaded as a new audience)"),
        required=False,
    )
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.none(),
        label=gettext_lazy("LINE channel (for a segment)"),
        required=False,
    )
    template = forms.ChoiceField(label=gettext_lazy("Message"), choices=TEMPLATE_CHOICES)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=60, required=False)
    text = forms.CharField(
        label=gettext_lazy("Text (text message)"),
        max_length=5000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    code = forms.CharField(label=gettext_lazy("Coupon code"), max_length=40, required=False)
    discount = forms.CharField(
        label=gettext_lazy("Discount (e.g. 10%OFF, ¥500引き)"), max_length=40, required=False
    )
    valid_until = forms.DateField(
        label=gettext_lazy("Valid until"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    url = forms.URLField(
        label=gettext_lazy("Link (coupon button; products: the shop's product URL prefix)"),
        required=False,
        assume_scheme="https",
    )
    products = forms.ModelMultipleChoiceField(
        queryset=Product.objects.none(), label=gettext_lazy("Products (1 to 12)"), required=False
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=120)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["audience"].queryset = LineAudience.objects.order_by("-created_at")  # type: ignore[attr-defined]
        self.fields["segment"].queryset = Segment.objects.order_by("name")  # type: ignore[attr-defined]
        self.fields["channel"].queryset = _line_channels()  # type: ignore[attr-defined]
        self.fields["products"].queryset = Product.objects.filter(active=True).order_by("name")  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if bool(data.get("audience")) == bool(data.get("segment")):
            self.add_error("audience", _("Choose an audience or a segment (one of them)."))
        if data.get("segment") and not data.get("channel"):
            self.add_error("channel", _("Choose the LINE channel to upload the segment to."))
        kind = data.get("template")
        required = {
            "text": ["text"],
            "coupon": ["title", "code", "discount"],
            "recommendations": ["products", "url"],
        }.get(str(kind), [])
        for name in required:
            if not data.get(name) and name not in self.errors:
                self.add_error(name, _("Required for this message."))
        if kind == "recommendations" and len(data.get("products") or []) > 12:
            self.add_error("products", _("At most 12 products fit in a carousel."))
        return data

    def line_messages(self, language: str) -> list[dict[str, Any]]:
        data = self.cleaned_data
        if data["template"] == "text":
            return [{"type": "text", "text": data["text"]}]
        if data["template"] == "coupon":
            return [
                flex.coupon_message(
                    title=data["title"],
                    code=data["code"],
                    discount=data["discount"],
                    valid_until=data.get("valid_until"),
                    url=data.get("url") or "",
                    language=language,
                )
            ]
        prefix = data["url"]
        items = [
            flex.Recommendation(p.name, p.price_minor, f"{prefix}{p.sku}", currency=p.currency)
            for p in data["products"]
        ]
        return [
            flex.recommendations_carousel(items, title=data.get("title") or "", language=language)
        ]


class RichMenuForm(forms.Form):
    channel = forms.ModelChoiceField(
        queryset=Channel.objects.none(), label=gettext_lazy("LINE channel")
    )
    layout = forms.ChoiceField(label=gettext_lazy("Layout"), choices=richmenus.layout_choices)
    name = forms.CharField(label=gettext_lazy("Name"), max_length=300)
    chat_bar_text = forms.CharField(
        label=gettext_lazy("Chat bar text"), max_length=14, initial=gettext_lazy("Menu")
    )
    url = forms.URLField(label=gettext_lazy("Link of the first button"), assume_scheme="https")
    image = forms.FileField(
        label=gettext_lazy("Image (PNG or JPEG, at most 1 MB, drawn to the layout's size)")
    )
    segment = forms.ModelChoiceField(
        queryset=Segment.objects.none(), label=gettext_lazy("For a segment"), required=False
    )
    tier = forms.ModelChoiceField(
        queryset=Tier.objects.none(), label=gettext_lazy("Or for a loyalty tier"), required=False
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["channel"].queryset = _line_channels()  # type: ignore[attr-defined]
        self.fields["segment"].queryset = Segment.objects.order_by("name")  # type: ignore[attr-defined]
        self.fields["tier"].queryset = Tier.objects.order_by("programme_id", "rank")  # type: ignore[attr-defined]


# --- audiences --------------------------------------------------------------------------


@staff_required("line_marketing.view_lineaudience")
def audience_list(request: HttpRequest) -> HttpResponse:
    audiences = (
        LineAudience.objects.select_related("segment", "channel")
        .annotate(send_count=Count("sends"))
        .order_by("-created_at", "-id")
    )
    return render(
        request,
        "console/line/audiences.html",
        {"page": _page(request, audiences), "form": AudienceForm()},
    )


@require_POST
@staff_required("line_marketing.add_lineaudience")
def audience_create(request: HttpRequest) -> HttpResponse:
    form = AudienceForm(request.POST)
    if form.is_valid():
        try:
            audience = services.audience_upload(
                channel=form.cleaned_data["channel"],
                segment=form.cleaned_data["segment"],
                description=form.cleaned_data["description"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            _errors(request, exc, form)
        else:
            messages.success(
                request,
                _("Uploaded %(n)s LINE users as an audience.") % {"n": audience.size},
            )
            return redirect("console:line_audience", audience.pk)
    audiences = LineAudience.objects.select_related("segment", "channel").annotate(
        send_count=Count("sends")
    )
    return render(
        request,
        "console/line/audiences.html",
        {"page": _page(request, audiences.order_by("-created_at", "-id")), "form": form},
        status=422,
    )


def _audience(audience_id: int) -> LineAudience:
    audience = (
        LineAudience.objects.select_related("segment", "channel").filter(pk=audience_id).first()
    )
    if audience is None:
        raise Http404
    return audience


@staff_required("line_marketing.view_lineaudience", "line_marketing.view_narrowcast")
def audience_detail(request: HttpRequest, audience_id: int) -> HttpResponse:
    audience = _audience(audience_id)
    return render(
        request,
        "console/line/audience.html",
        {"audience": audience, "sends": audience.sends.order_by("-created_at", "-id")[:50]},
    )


@require_POST
@staff_required("line_marketing.view_lineaudience")
def audience_refresh(request: HttpRequest, audience_id: int) -> HttpResponse:
    audience = _audience(audience_id)
    try:
        services.audience_refresh(audience=audience)
    except ValidationError as exc:
        _errors(request, exc)
    return redirect("console:line_audience", audience.pk)


# --- narrowcasts ------------------------------------------------------------------------


@staff_required("line_marketing.view_narrowcast")
def narrowcast_list(request: HttpRequest) -> HttpResponse:
    sends = Narrowcast.objects.select_related("audience", "audience__segment").order_by(
        "-created_at", "-id"
    )
    return render(request, "console/line/narrowcasts.html", {"page": _page(request, sends)})


@staff_required("line_marketing.add_narrowcast", "line_marketing.add_lineaudience")
def narrowcast_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        initial: dict[str, Any] = {"idempotency_key": uuid.uuid4().hex}
        if request.GET.get("audience", "").isdigit():
            initial["audience"] = int(request.GET["audience"])
        form = NarrowcastForm(initial=initial)
        return render(request, "console/line/narrowcast_form.html", {"form": form})
    form = NarrowcastForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        language = "en" if (get_language() or "").startswith("en") else "ja"
        try:
            line_messages = form.line_messages(language)
            if data.get("audience"):
                sent = services.narrowcast_send(
                    audience=data["audience"],
                    messages=line_messages,
                    idempotency_key=data["idempotency_key"],
                    actor=_staff(request),
                )
            else:
                sent = services.narrowcast_to_segment(
                    channel=data["channel"],
                    segment=data["segment"],
                    messages=line_messages,
                    idempotency_key=data["idempotency_key"],
                    actor=_staff(request),
                )
        except ValueError as exc:  # a Flex template refused its values
            form.add_error(None, str(exc))
        except ValidationError as exc:
            _errors(request, exc, form)
        else:
            messages.success(request, _("Narrowcast accepted by LINE."))
            return redirect("console:line_narrowcast", sent.pk)
    return render(request, "console/line/narrowcast_form.html", {"form": form}, status=422)


def _narrowcast(narrowcast_id: int) -> Narrowcast:
    sent = (
        Narrowcast.objects.select_related("audience", "audience__channel", "audience__segment")
        .filter(pk=narrowcast_id)
        .first()
    )
    if sent is None:
        raise Http404
    return sent


@staff_required("line_marketing.view_narrowcast")
def narrowcast_detail(request: HttpRequest, narrowcast_id: int) -> HttpResponse:
    sent = _narrowcast(narrowcast_id)
    percent = None
    if sent.target_count:
        percent = round(100 * (sent.success_count or 0) / sent.target_count)
    previews = [
        str(m.get("altText") or m.get("text") or m.get("type") or "") if isinstance(m, dict) else ""
        for m in sent.messages or []
    ]
    return render(
        request,
        "console/line/narrowcast.html",
        {"sent": sent, "delivered_percent": percent, "previews": previews},
    )


@require_POST
@staff_required("line_marketing.view_narrowcast")
def narrowcast_refresh(request: HttpRequest, narrowcast_id: int) -> HttpResponse:
    sent = _narrowcast(narrowcast_id)
    try:
        services.narrowcast_refresh(narrowcast=sent)
    except ValidationError as exc:
        _errors(request, exc)
    return redirect("console:line_narrowcast", sent.pk)


# --- rich menus -------------------------------------------------------------------------


@staff_required("line_marketing.view_richmenu")
def richmenu_list(request: HttpRequest) -> HttpResponse:
    menus = RichMenu.objects.select_related("channel", "segment", "tier").order_by(
        "-created_at", "-id"
    )
    return render(request, "console/line/richmenus.html", {"page": _page(request, menus)})


@staff_required("line_marketing.add_richmenu")
def richmenu_new(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return render(request, "console/line/richmenu_form.html", {"form": RichMenuForm()})
    form = RichMenuForm(request.POST, request.FILES)
    if form.is_valid():
        data = form.cleaned_data
        upload = data["image"]
        try:
            if upload.size > services.MAX_IMAGE_BYTES:
                raise ValidationError({"image": [_("The image must be at most 1 MB.")]})
            services.rich_menu_create(
                channel=data["channel"],
                definition=richmenus.build(
                    data["layout"],
                    name=data["name"],
                    chat_bar_text=data["chat_bar_text"],
                    url=data["url"],
                ),
                image=upload.read(),
                content_type=str(upload.content_type or ""),
                segment=data.get("segment"),
                tier=data.get("tier"),
            )
        except ValidationError as exc:
            _errors(request, exc, form)
        else:
            messages.success(request, _("Rich menu created on LINE."))
            return redirect("console:line_richmenus")
    return render(request, "console/line/richmenu_form.html", {"form": form}, status=422)


def _menu(menu_id: int) -> RichMenu:
    menu = RichMenu.objects.select_related("channel", "segment", "tier").filter(pk=menu_id).first()
    if menu is None:
        raise Http404
    return menu


@require_POST
@staff_required("line_marketing.change_richmenu")
def richmenu_link(request: HttpRequest, menu_id: int) -> HttpResponse:
    menu = _menu(menu_id)
    try:
        linked = services.rich_menu_link_segment(menu=menu)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, _("Linked to %(n)s LINE users.") % {"n": linked})
    return redirect("console:line_richmenus")


@require_POST
@staff_required("line_marketing.change_richmenu")
def richmenu_default(request: HttpRequest, menu_id: int) -> HttpResponse:
    menu = _menu(menu_id)
    try:
        services.rich_menu_set_default(menu=menu)
    except ValidationError as exc:
        _errors(request, exc)
    else:
        messages.success(request, _("%(name)s is now the default menu.") % {"name": menu.name})
    return redirect("console:line_richmenus")
