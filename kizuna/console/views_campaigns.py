"""Console pages of campaigns: the list, the editor (audience from segments, channels,
variants, schedule, test settings), the campaign page (reach, approval and sending actions,
test send, results with charts) and the results CSV."""

from __future__ import annotations

import csv
from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.campaigns import selectors, services
from kizuna.campaigns.choices import (
    AttributionModel,
    CampaignStatus,
    ChannelMode,
    Metric,
    ScheduleKind,
)
from kizuna.campaigns.models import Campaign
from kizuna.console import campaign_charts
from kizuna.console.views import _page, _staff, staff_required
from kizuna.core import jp_calendar
from kizuna.core.errors import NotFound
from kizuna.messaging import selectors as messaging_selectors
from kizuna.messaging.models import Channel, Template
from kizuna.segments.models import Segment

VARIANT_ROWS = services.MAX_VARIANTS
VARIANT_FIELDS = ("name", "email_template", "line_template", "subject", "send_hour", "weight")


class CampaignForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=150)
    include_segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.none(), label=gettext_lazy("Audience: customers in any of")
    )
    exclude_segments = forms.ModelMultipleChoiceField(
        queryset=Segment.objects.none(), label=gettext_lazy("Except those in"), required=False
    )
    channel_mode = forms.ChoiceField(label=gettext_lazy("Channels"), choices=ChannelMode.choices)
    email_channel = forms.ModelChoiceField(
        queryset=Channel.objects.none(), label=gettext_lazy("Email channel"), required=False
    )
    line_channel = forms.ModelChoiceField(
        queryset=Channel.objects.none(), label=gettext_lazy("LINE channel"), required=False
    )
    schedule = forms.ChoiceField(label=gettext_lazy("Send"), choices=ScheduleKind.choices)
    send_at = forms.DateTimeField(
        label=gettext_lazy("Send at"),
        required=False,
        initial=jp_calendar.next_business_send_time,  # next business day, 10:00 JST
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    default_hour = forms.IntegerField(
        label=gettext_lazy("Best hour for customers who never opened"),
        min_value=0,
        max_value=23,
        initial=10,
    )
    throttle_per_minute = forms.IntegerField(
        label=gettext_lazy("At most per minute (blank: no limit)"), min_value=1, required=False
    )
    holdout_percent = forms.IntegerField(
        label=gettext_lazy("Holdout (control group), percent"), min_value=0, max_value=50, initial=0
    )
    test_percent = forms.IntegerField(
        label=gettext_lazy(
            "Test on this percentage of the audience (100: no separate winner send)"
        ),
        min_value=1,
        max_value=100,
        initial=100,
    )
    test_hours = forms.IntegerField(
        label=gettext_lazy("Test window (hours)"), min_value=1, max_value=168, initial=4
    )
    metric = forms.ChoiceField(label=gettext_lazy("Winner by"), choices=Metric.choices)
    attribution_days = forms.IntegerField(
        label=gettext_lazy("Attribution window (days)"), min_value=1, max_value=90, initial=7
    )
    attribution_model = forms.ChoiceField(
        label=gettext_lazy("Attribution"), choices=AttributionModel.choices
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        segments = Segment.objects.order_by("name")
        for key in ("include_segments", "exclude_segments"):
            self.fields[key].queryset = segments  # type: ignore[attr-defined]
        for key, kind in (("email_channel", "email"), ("line_channel", "line")):
            self.fields[key].queryset = Channel.objects.filter(  # type: ignore[attr-defined]
                kind=kind, active=True
            )
        templates = Template.objects.order_by("name")
        for i in range(VARIANT_ROWS):
            letter = services.VARIANT_KEYS[i]
            self.fields[f"v{i}_name"] = forms.CharField(
                label=_("Variant %(k)s: name") % {"k": letter}, required=False, max_length=100
            )
            self.fields[f"v{i}_email_template"] = forms.ModelChoiceField(
                queryset=templates.filter(channel_kind="email"),
                label=_("Variant %(k)s: email template") % {"k": letter},
                required=False,
            )
            self.fields[f"v{i}_line_template"] = forms.ModelChoiceField(
                queryset=templates.filter(channel_kind="line"),
                label=_("Variant %(k)s: LINE template") % {"k": letter},
                required=False,
            )
            self.fields[f"v{i}_subject"] = forms.CharField(
                label=_("Variant %(k)s: subject (blank: the template's)") % {"k": letter},
                required=False,
                max_length=300,
            )
            self.fields[f"v{i}_send_hour"] = forms.IntegerField(
                label=_("Variant %(k)s: send at local hour (blank: the schedule)") % {"k": letter},
                required=False,
                min_value=0,
                max_value=23,
            )
            self.fields[f"v{i}_weight"] = forms.IntegerField(
                label=_("Variant %(k)s: split weight") % {"k": letter},
                required=False,
                min_value=1,
                max_value=100,
                initial=1,
            )

    def variant_rows(self) -> list[tuple[str, list[forms.BoundField]]]:
        return [
            (services.VARIANT_KEYS[i], [self[f"v{i}_{f}"] for f in VARIANT_FIELDS])
            for i in range(VARIANT_ROWS)
        ]

    def main_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.fields if not name.startswith("v") or "_" not in name]

    def service_data(self) -> dict[str, Any]:
        data = self.cleaned_data
        variants = []
        for i in range(VARIANT_ROWS):
            email, line = data.get(f"v{i}_email_template"), data.get(f"v{i}_line_template")
            if i > 0 and email is None and line is None:
                continue
            variants.append(
                {
                    "name": data.get(f"v{i}_name") or "",
                    "email_template": email.pk if email else None,
                    "line_template": line.pk if line else None,
                    "subject": data.get(f"v{i}_subject") or "",
                    "send_hour": data.get(f"v{i}_send_hour"),
                    "weight": data.get(f"v{i}_weight") or 1,
                }
            )
        return {
            "name": data["name"],
            "include_segments": [s.pk for s in data["include_segments"]],
            "exclude_segments": [s.pk for s in data["exclude_segments"]],
            "channel_mode": data["channel_mode"],
            "email_channel": data["email_channel"].pk if data.get("email_channel") else None,
            "line_channel": data["line_channel"].pk if data.get("line_channel") else None,
            "schedule": data["schedule"],
            "send_at": data.get("send_at"),
            "default_hour": data["default_hour"],
            "throttle_per_minute": data.get("throttle_per_minute"),
            "holdout_percent": data["holdout_percent"],
            "test_percent": data["test_percent"],
            "test_hours": data["test_hours"],
            "metric": data["metric"],
            "attribution_days": data["attribution_days"],
            "attribution_model": data["attribution_model"],
            "variants": variants,
        }


def _initial(campaign: Campaign) -> dict[str, Any]:
    initial: dict[str, Any] = {
        key: getattr(campaign, key)
        for key in (
            "name",
            "channel_mode",
            "schedule",
            "send_at",
            "default_hour",
            "throttle_per_minute",
            "holdout_percent",
            "test_percent",
            "test_hours",
            "metric",
            "attribution_days",
            "attribution_model",
        )
    }
    initial["include_segments"] = list(campaign.include_segments.all())
    initial["exclude_segments"] = list(campaign.exclude_segments.all())
    initial["email_channel"] = campaign.email_channel_id
    initial["line_channel"] = campaign.line_channel_id
    for i, variant in enumerate(campaign.variants.order_by("key")):
        initial.update(
            {
                f"v{i}_name": variant.name,
                f"v{i}_email_template": variant.email_template_id,
                f"v{i}_line_template": variant.line_template_id,
                f"v{i}_subject": variant.subject,
                f"v{i}_send_hour": variant.send_hour,
                f"v{i}_weight": variant.weight,
            }
        )
    return initial


class TestSendForm(forms.Form):
    variant = forms.CharField(label=gettext_lazy("Variant"), max_length=8)
    channel = forms.ChoiceField(
        label=gettext_lazy("Channel"), choices=[("email", "Email"), ("line", "LINE")]
    )
    to = forms.CharField(
        label=gettext_lazy("Send to (email address or LINE user ID)"), max_length=255
    )


def _errors_to_form(form: forms.Form, exc: ValidationError) -> None:
    for key, errors in exc.message_dict.items():
        target = key if key in form.fields else None
        if key.startswith("variants["):
            index, _sep, part = key[len("variants[") :].partition("].")
            name = f"v{index}_{part}"
            target = name if name in form.fields else None
        for error in errors:
            form.add_error(target, error if target else f"{key}: {error}")


def _get(campaign_id: int) -> Campaign:
    try:
        return selectors.campaign_get(campaign_id=campaign_id)
    except NotFound as exc:
        raise Http404 from exc


@staff_required("campaigns.view_campaign")
def campaign_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or ""
    if status not in CampaignStatus.values:
        status = ""
    return render(
        request,
        "console/campaigns/list.html",
        {
            "page": _page(request, selectors.campaign_list(status=status or None)),
            "status": status,
            "statuses": CampaignStatus.choices,
        },
    )


@staff_required("campaigns.view_campaign")
def campaign_edit(request: HttpRequest, campaign_id: int | None = None) -> HttpResponse:
    campaign = _get(campaign_id) if campaign_id is not None else None
    if campaign is not None and campaign.status != CampaignStatus.DRAFT:
        messages.error(request, _("Only a draft can be edited."))
        return redirect("console:campaign_detail", campaign_id=campaign.pk)
    if request.method == "POST":
        perm = "campaigns.change_campaign" if campaign else "campaigns.add_campaign"
        if not request.user.has_perm(perm):
            return HttpResponse(status=403)
        form = CampaignForm(request.POST)
        if form.is_valid():
            try:
                saved = services.campaign_save(
                    data=form.service_data(), actor=_staff(request), campaign=campaign
                )
            except ValidationError as exc:
                _errors_to_form(form, exc)
            else:
                messages.success(request, _("Campaign saved."))
                return redirect("console:campaign_detail", campaign_id=saved.pk)
    else:
        form = CampaignForm(initial=_initial(campaign) if campaign else {})
    return render(request, "console/campaigns/form.html", {"form": form, "campaign": campaign})


@staff_required("campaigns.view_campaign")
def campaign_detail(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _get(campaign_id)
    context: dict[str, Any] = {
        "campaign": campaign,
        "variants": list(campaign.variants.order_by("key")),
        "recipient_counts": selectors.recipient_counts(campaign=campaign),
        "test_form": TestSendForm(initial={"variant": "A"}),
        "can_send": request.user.has_perm(services.SEND_PERMISSION),
        "can_change": request.user.has_perm("campaigns.change_campaign"),
    }
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.PENDING_APPROVAL):
        context["reach"] = selectors.audience_reach(campaign=campaign)
    if campaign.launched_at:
        context["send_panel"] = _send_panel(campaign)
        results = selectors.campaign_results(campaign=campaign)
        context["results"] = results
        total = {key: 0 for key in ("recipients", "sent", "delivered", "opened", "clicked")}
        total["conversions"] = 0
        for row in results["variants"]:
            for key in total:
                total[key] += row[key]
        context["rates_figure"] = campaign_charts.variant_rates(results["variants"])
        context["funnel_figure"] = campaign_charts.funnel(total)
        if results["holdout"]:
            context["holdout_figure"] = campaign_charts.holdout_bars(results["holdout"])
    return render(request, "console/campaigns/detail.html", context)


_ACTIONS: dict[str, tuple[str, Any, Any]] = {
    "submit": (
        "campaigns.change_campaign",
        services.campaign_submit,
        gettext_lazy("Submitted for approval."),
    ),
    "schedule": (
        services.SEND_PERMISSION,
        services.campaign_schedule,
        gettext_lazy("Campaign scheduled."),
    ),
    "reject": (
        services.SEND_PERMISSION,
        services.campaign_reject,
        gettext_lazy("Sent back to draft."),
    ),
    "pause": ("campaigns.change_campaign", services.campaign_pause, gettext_lazy("Paused.")),
    "resume": (services.SEND_PERMISSION, services.campaign_resume, gettext_lazy("Resumed.")),
    "cancel": (
        "campaigns.change_campaign",
        services.campaign_cancel,
        gettext_lazy("Campaign cancelled."),
    ),
}


@staff_required("campaigns.view_campaign")
@require_POST
def campaign_action(request: HttpRequest, campaign_id: int, action: str) -> HttpResponse:
    campaign = _get(campaign_id)
    if action == "pick_winner":
        if not request.user.has_perm(services.SEND_PERMISSION):
            return HttpResponse(status=403)
        decision = services.campaign_pick_winner(campaign_id=campaign.pk, force=True)
        if decision is None:
            messages.error(request, _("There is no test waiting for a winner."))
        else:
            messages.success(request, _("Winner: variant %(k)s.") % {"k": decision["winner"]})
        return redirect("console:campaign_detail", campaign_id=campaign.pk)
    if action not in _ACTIONS:
        raise Http404
    perm, service, done = _ACTIONS[action]
    if not request.user.has_perm(perm):
        return HttpResponse(status=403)
    kwargs: dict[str, Any] = {}
    if action == "reject":
        kwargs["note"] = str(request.POST.get("note") or "")[:500]
    try:
        service(campaign=campaign, actor=_staff(request), **kwargs)
    except ValidationError as exc:
        for errors in exc.message_dict.values():
            for error in errors:
                messages.error(request, error)
    except PermissionDenied as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, str(done))
    return redirect("console:campaign_detail", campaign_id=campaign.pk)


@staff_required("campaigns.change_campaign")
@require_POST
def campaign_test_send(request: HttpRequest, campaign_id: int) -> HttpResponse:
    campaign = _get(campaign_id)
    form = TestSendForm(request.POST)
    if form.is_valid():
        try:
            services.campaign_test_send(
                campaign=campaign,
                variant_key=form.cleaned_data["variant"],
                channel_kind=form.cleaned_data["channel"],
                to_address=form.cleaned_data["to"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            for errors in exc.message_dict.values():
                for error in errors:
                    messages.error(request, error)
        else:
            messages.success(request, _("Test message queued."))
    else:
        messages.error(request, _("Choose a variant and an address."))
    return redirect("console:campaign_detail", campaign_id=campaign.pk)


CSV_COLUMNS = [
    "recipients",
    "sent",
    "delivered",
    "opened",
    "opened_raw",
    "clicked",
    "clicked_raw",
    "unsubscribed",
    "bounced",
    "complained",
    "refused",
    "failed",
    "queued",
    "conversions",
    "orders",
    "revenue",
    "open_rate",
    "open_rate_raw",
    "click_rate",
    "click_rate_raw",
    "conversion_rate",
]


@staff_required("campaigns.view_campaign")
def campaign_results_csv(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The results table: one row per variant, then one per segment, then the holdout."""
    campaign = _get(campaign_id)
    results = selectors.campaign_results(campaign=campaign)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-results.csv"'
    response.write("\ufeff")  # BOM: Excel opens Japanese text as UTF-8
    writer = csv.writer(response)
    writer.writerow(["breakdown", "key", "name", *CSV_COLUMNS])
    for row in results["variants"]:
        writer.writerow(["variant", row["key"], row["name"], *(row[c] for c in CSV_COLUMNS)])
    for row in results["segments"]:
        writer.writerow(
            ["segment", row["segment_id"] or "", row["name"], *(row[c] for c in CSV_COLUMNS)]
        )
    holdout = results["holdout"]
    if holdout:
        writer.writerow([])
        writer.writerow(["holdout", *holdout.keys()])
        writer.writerow(["", *holdout.values()])
    return response


@staff_required("campaigns.view_campaign")
def campaign_send_panel(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """The campaign's live send panel (throughput, backlog, ETA, errors), polled by htmx."""
    campaign = _get(campaign_id)
    return render(
        request,
        "console/campaigns/_send_panel.html",
        {"campaign": campaign, "panel": _send_panel(campaign)},
    )


def _send_panel(campaign: Campaign) -> dict[str, Any]:
    return messaging_selectors.send_panel(source_prefix=f"campaign:{campaign.pk}:")
