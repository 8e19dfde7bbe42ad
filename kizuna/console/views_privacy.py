"""Console pages of privacy (docs/privacy.md): data-subject requests (open, export as a zip,
erase after typing the customer number, reject), erasure records, versioned purpose-of-use
notices, the audit log (browse, CSV), the retention runs and policies, a customer-360 panel
with the consent history, and the two-factor page (kizuna.iam.otp)."""

from __future__ import annotations

import csv
from base64 import b32encode
from typing import Any

from auditlog.models import LogEntry
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.customers.choices import ConsentPurpose
from kizuna.customers.models import ConsentEntry, Customer
from kizuna.privacy import retention, selectors, services
from kizuna.privacy.models import DataSubjectRequest, RequestKind, RequestStatus

AUDIT_CSV_LIMIT = 100_000


class RequestForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=RequestKind.choices)
    customer_id = forms.IntegerField(label=gettext_lazy("Customer number"), min_value=1)
    note = forms.CharField(
        label=gettext_lazy("Note"),
        max_length=500,
        required=False,
        help_text=gettext_lazy("How the request arrived. No personal data: it is erased too."),
    )


class NoticeForm(forms.Form):
    purpose = forms.ChoiceField(label=gettext_lazy("Purpose"), choices=ConsentPurpose.choices)
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    text = forms.CharField(label=gettext_lazy("Text (Japanese)"), widget=forms.Textarea)
    text_en = forms.CharField(
        label=gettext_lazy("Text (English)"), widget=forms.Textarea, required=False
    )


def _apply(form: forms.Form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        for error in errors:
            form.add_error(field if field in form.fields else None, error)


def _request(request_id: int) -> DataSubjectRequest:
    try:
        return selectors.request_get(request_id=request_id)
    except NotFound as exc:
        raise Http404 from exc


@staff_required("privacy.view_datasubjectrequest")
def request_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status", "")
    form = RequestForm(initial={"customer_id": request.GET.get("customer") or None})
    code = 200
    if request.method == "POST":
        if not request.user.has_perm("privacy.add_datasubjectrequest"):
            raise PermissionDenied
        form = RequestForm(request.POST)
        if form.is_valid():
            customer = Customer.objects.filter(pk=form.cleaned_data["customer_id"]).first()
            try:
                created = services.request_create(
                    kind=form.cleaned_data["kind"],
                    customer=customer,
                    note=form.cleaned_data["note"],
                    actor=_staff(request),
                )
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(request, _("The request was opened."))
                return redirect("console:privacy_request", request_id=created.pk)
        code = 400
    context = {
        "section": "privacy",
        "page": _page(request, selectors.request_list(status=status or None)),
        "status": status,
        "statuses": RequestStatus.choices,
        "overdue": selectors.requests_overdue().count(),
        "form": form,
    }
    return render(request, "console/privacy/requests.html", context, status=code)


@staff_required("privacy.view_datasubjectrequest")
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    found = _request(request_id)
    context = {
        "section": "privacy",
        "req": found,
        "log": found.log_entries.select_related("actor"),
        "erasures": selectors.erasure_list().filter(request=found),
    }
    return render(request, "console/privacy/request.html", context)


@require_POST
@staff_required("privacy.export_customer")
def request_export(request: HttpRequest, request_id: int) -> HttpResponse:
    found = _request(request_id)
    try:
        data = services.request_export(request=found, actor=_staff(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("console:privacy_request", request_id=found.pk)
    response = HttpResponse(data, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="kizuna-export-{found.pk}.zip"'
    return response


@require_POST
@staff_required("privacy.erase_customer")
def request_erase(request: HttpRequest, request_id: int) -> HttpResponse:
    found = _request(request_id)
    if request.POST.get("confirm", "").strip() != str(found.customer_id):
        messages.error(request, _("Type the customer number to confirm the erasure."))
        return redirect("console:privacy_request", request_id=found.pk)
    try:
        record = services.request_erase(request=found, actor=_staff(request))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(
            request,
            _("Customer #%(id)s was erased (%(n)d rows).")
            % {"id": found.customer_id, "n": sum(record.kinds.values())},
        )
    return redirect("console:privacy_request", request_id=found.pk)


@require_POST
@staff_required("privacy.change_datasubjectrequest")
def request_reject(request: HttpRequest, request_id: int) -> HttpResponse:
    found = _request(request_id)
    try:
        services.request_reject(
            request=found, reason=request.POST.get("reason", ""), actor=_staff(request)
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, _("The request was rejected."))
    return redirect("console:privacy_request", request_id=found.pk)


@staff_required("privacy.view_erasurerecord")
def erasure_list(request: HttpRequest) -> HttpResponse:
    context = {"section": "privacy", "page": _page(request, selectors.erasure_list())}
    return render(request, "console/privacy/erasures.html", context)


@staff_required("privacy.view_retentionrun")
def retention_runs(request: HttpRequest) -> HttpResponse:
    """The retention runs (worker and command), newest first, and the policies in force."""
    page = _page(request, selectors.retention_runs())
    labels = {
        "events": _("Raw events (aggregated, then deleted)"),
        "delivery_bodies": _("Delivery bodies (blanked)"),
        "inbox": _("Processed tracking batches (deleted)"),
        "inquiries": _("Finished inquiries (contact details and text removed)"),
        "survey_text": _("Survey free text (emptied)"),
    }
    units = {"days": _("days"), "months": _("months")}
    policies = [
        {**p, "label": labels.get(p["key"], p["key"]), "unit_label": units.get(p["unit"], "")}
        for p in retention.policies()
    ]
    runs = [
        {
            "run": run,
            "rows": [
                {"label": labels.get(key, key), "key": key, **values}
                for key, values in run.report.items()
            ],
        }
        for run in page.object_list
    ]
    context = {"section": "privacy", "page": page, "runs": runs, "policies": policies}
    return render(request, "console/privacy/retention.html", context)


@staff_required("privacy.view_purposenotice")
def notice_list(request: HttpRequest) -> HttpResponse:
    form = NoticeForm()
    code = 200
    if request.method == "POST":
        if not request.user.has_perm("privacy.add_purposenotice"):
            raise PermissionDenied
        form = NoticeForm(request.POST)
        if form.is_valid():
            try:
                notice = services.notice_publish(**form.cleaned_data, actor=_staff(request))
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(
                    request,
                    _("Version %(v)d of the notice was published.") % {"v": notice.version},
                )
                return redirect("console:privacy_notices")
        code = 400
    current = {p: selectors.notice_current(purpose=p) for p in ConsentPurpose.values}
    context = {
        "section": "privacy",
        "notices": selectors.notice_list(),
        "current": [(label, current[value]) for value, label in ConsentPurpose.choices],
        "form": form,
    }
    return render(request, "console/privacy/notices.html", context, status=code)


def _audit_rows(request: HttpRequest) -> Any:
    rows = LogEntry.objects.select_related("actor", "content_type").order_by("-timestamp", "-id")
    model = request.GET.get("model", "")
    if model:
        app_label, _dot, name = model.partition(".")
        rows = rows.filter(content_type__app_label=app_label, content_type__model=name)
    actor = request.GET.get("actor", "")
    if actor:
        rows = rows.filter(actor__username=actor)
    return rows


@staff_required("auditlog.view_logentry")
def audit_log(request: HttpRequest) -> HttpResponse:
    rows = _audit_rows(request)
    if request.GET.get("format") == "csv":
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="kizuna-audit-log.csv"'
        response.write("\ufeff")
        writer = csv.writer(response)
        writer.writerow(["id", "timestamp", "actor", "action", "model", "object", "changes"])
        for entry in rows[:AUDIT_CSV_LIMIT]:
            writer.writerow(
                [
                    entry.pk,
                    entry.timestamp.isoformat(),
                    entry.actor.get_username() if entry.actor else "",
                    entry.get_action_display(),
                    f"{entry.content_type.app_label}.{entry.content_type.model}",
                    entry.object_repr,
                    entry.changes_str,
                ]
            )
        return response
    context = {
        "section": "privacy",
        "page": _page(request, rows),
        "model": request.GET.get("model", ""),
        "actor": request.GET.get("actor", ""),
    }
    return render(request, "console/privacy/audit.html", context)


def privacy_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    history = ConsentEntry.objects.filter(customer=customer).select_related("recorded_by")
    requests = DataSubjectRequest.objects.filter(customer=customer).order_by("-created_at")
    return {
        "consents": list(history.order_by("-recorded_at", "-id")[:100]),
        "requests": list(requests[:20]),
    }


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="privacy",
            template="console/privacy/_customer_panel.html",
            context=privacy_panel,
            permission="customers.view_consententry",
            order=90,
        )
    )


# --- two-factor sign-in (kizuna.iam.otp) --------------------------------------------------


class TokenForm(forms.Form):
    token = forms.CharField(
        label=gettext_lazy("Code from the authenticator app"),
        max_length=8,
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "one-time-code"}),
    )


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Set up (QR code of a new TOTP device) and verify the second factor for this session."""
    import segno
    from django_otp import login as otp_login
    from django_otp.plugins.otp_totp.models import TOTPDevice

    user = _staff(request)
    device = TOTPDevice.objects.filter(user=user).order_by("-confirmed", "pk").first()
    if device is None:
        device = TOTPDevice.objects.create(user=user, name="console", confirmed=False)
    target = request.GET.get("next") or request.POST.get("next") or ""
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = ""
    form = TokenForm(request.POST if request.method == "POST" else None)
    code = 200
    if request.method == "POST":
        if form.is_valid() and device.verify_token(form.cleaned_data["token"].strip()):
            if not device.confirmed:
                device.confirmed = True
                device.save(update_fields=["confirmed"])
            otp_login(request, device)
            messages.success(request, _("Two-factor verification succeeded."))
            return redirect(target or "console:dashboard")
        form.add_error("token", _("The code is not valid. Check the time on your device."))
        code = 400
    context: dict[str, Any] = {"form": form, "next": target, "confirmed": device.confirmed}
    if not device.confirmed:
        context["qr_svg"] = segno.make(device.config_url, error="m").svg_inline(scale=4)
        context["secret"] = b32encode(device.bin_key).decode()
    return render(request, "console/privacy/two_factor.html", context, status=code)
