"""Console pages of support: the inquiry queue (SLA breaches highlighted, KPI tiles), one
inquiry (thread, reply box with canned answers, FAQ suggestions, status/priority/assignee),
a new inquiry, the FAQ knowledge base and canned answers, and the customer-360 panel."""

from __future__ import annotations

import uuid
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.customers.models import Customer
from kizuna.support import faq, selectors, services
from kizuna.support.choices import Direction, InquiryStatus, Origin, Priority
from kizuna.support.models import CannedAnswer, FaqArticle, Inquiry


def _assignees() -> list[tuple[str, str]]:
    users = get_user_model().objects.filter(is_active=True, is_staff=True).order_by("username")
    return [("", "—"), *((str(u.pk), u.get_username()) for u in users)]


class InquiryForm(forms.Form):
    customer_id = forms.IntegerField(label=gettext_lazy("Customer ID"), required=False)
    contact_name = forms.CharField(
        label=gettext_lazy("Contact name"), max_length=150, required=False
    )
    contact_email = forms.EmailField(label=gettext_lazy("Contact email"), required=False)
    subject = forms.CharField(label=gettext_lazy("Subject"), max_length=200)
    body = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 6}))
    priority = forms.ChoiceField(
        label=gettext_lazy("Priority"), choices=Priority.choices, initial=Priority.NORMAL
    )


class ReplyForm(forms.Form):
    body = forms.CharField(label=gettext_lazy("Message"), widget=forms.Textarea(attrs={"rows": 6}))
    kind = forms.ChoiceField(
        label=gettext_lazy("Send as"),
        choices=[
            ("reply", gettext_lazy("Reply to the customer")),
            (Direction.NOTE, gettext_lazy("Internal note")),
        ],
    )
    status = forms.ChoiceField(
        label=gettext_lazy("Then"),
        choices=[
            (InquiryStatus.PENDING, gettext_lazy("Wait for the customer")),
            (InquiryStatus.RESOLVED, gettext_lazy("Mark resolved")),
            (InquiryStatus.OPEN, gettext_lazy("Keep open")),
        ],
    )
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)


class ChangeForm(forms.Form):
    status = forms.ChoiceField(label=gettext_lazy("Status"), choices=InquiryStatus.choices)
    priority = forms.ChoiceField(label=gettext_lazy("Priority"), choices=Priority.choices)
    assignee = forms.ChoiceField(label=gettext_lazy("Assignee"), choices=(), required=False)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["assignee"].choices = _assignees()  # type: ignore[attr-defined]


class ArticleForm(forms.Form):
    key = forms.SlugField(label=gettext_lazy("Key"), max_length=80)
    locale = forms.ChoiceField(
        label=gettext_lazy("Language"), choices=[("ja", "日本語"), ("en", "English")]
    )
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    body = forms.CharField(label=gettext_lazy("Answer"), widget=forms.Textarea(attrs={"rows": 8}))
    tags = forms.CharField(
        label=gettext_lazy("Tags (comma-separated)"), max_length=400, required=False
    )
    published = forms.BooleanField(label=gettext_lazy("Published"), required=False, initial=True)


class CannedForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=150)
    body_ja = forms.CharField(
        label=gettext_lazy("Text (Japanese)"), widget=forms.Textarea(attrs={"rows": 5})
    )
    body_en = forms.CharField(
        label=gettext_lazy("Text (English)"),
        widget=forms.Textarea(attrs={"rows": 5}),
        required=False,
    )
    active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)


def _errors(request: HttpRequest, form: forms.Form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        target = field if field in form.fields else None
        for error in errors:
            if target:
                form.add_error(target, error)
            else:
                messages.error(request, f"{field}: {error}")


# --- customer 360 -------------------------------------------------------------------------


def support_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    items = selectors.open_inquiries_of(customer=customer)
    rows = [(i, selectors.sla_state(i)) for i in items]
    return {"rows": rows, "customer": customer}


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="support",
            template="console/support/_panel.html",
            context=support_panel,
            permission="support.view_inquiry",
            order=45,
        )
    )


# --- queue and inquiries --------------------------------------------------------------------


@staff_required("support.view_inquiry")
def queue(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or "active"
    if status not in ("active", "all", *InquiryStatus.values):
        status = "active"
    breached = request.GET.get("breached") == "1"
    mine = request.GET.get("mine") == "1"
    items = selectors.inquiry_list(
        status=status,
        breached=breached,
        assignee_id=request.user.pk if mine else None,
        q=request.GET.get("q", "")[:100],
    )
    page = _page(request, items)
    rows = [(i, selectors.sla_state(i)) for i in page.object_list]
    return render(
        request,
        "console/support/queue.html",
        {
            "section": "support",
            "page": page,
            "rows": rows,
            "kpis": selectors.kpis(),
            "status": status,
            "breached": breached,
            "mine": mine,
            "q": request.GET.get("q", ""),
            "statuses": InquiryStatus.choices,
        },
    )


@staff_required("support.add_inquiry")
def inquiry_new(request: HttpRequest) -> HttpResponse:
    form = InquiryForm(request.POST or None, initial={"customer_id": request.GET.get("customer")})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        customer = None
        if data["customer_id"]:
            customer = Customer.objects.filter(pk=data["customer_id"]).first()
            if customer is None:
                form.add_error("customer_id", _("No customer with this ID."))
        if form.is_valid():
            try:
                inquiry, _created = services.inquiry_open(
                    subject=data["subject"],
                    body=data["body"],
                    origin=Origin.CONSOLE,
                    customer=customer,
                    contact_name=data["contact_name"],
                    contact_email=data["contact_email"],
                    priority=data["priority"],
                    actor=_staff(request),
                )
            except ValidationError as exc:
                _errors(request, form, exc)
            else:
                return redirect("console:support_inquiry", inquiry.pk)
    return render(request, "console/support/new.html", {"section": "support", "form": form})


def _detail_context(
    request: HttpRequest, inquiry: Inquiry, reply_form: ReplyForm
) -> dict[str, Any]:
    thread = selectors.thread(inquiry=inquiry)
    last_inbound = next((m for m in reversed(thread) if m.direction == Direction.INBOUND), None)
    question = f"{inquiry.subject}\n{last_inbound.body if last_inbound else ''}"
    suggestions = faq.search(question, locale=inquiry.locale)
    return {
        "section": "support",
        "inquiry": inquiry,
        "sla": selectors.sla_state(inquiry),
        "thread": thread,
        "reply_form": reply_form,
        "change_form": ChangeForm(
            initial={
                "status": inquiry.status,
                "priority": inquiry.priority,
                "assignee": inquiry.assignee_id or "",
            }
        ),
        "canned": list(selectors.canned_answers()),
        "suggestions": suggestions,
    }


@staff_required("support.view_inquiry")
def inquiry_detail(request: HttpRequest, inquiry_id: int) -> HttpResponse:
    inquiry = get_object_or_404(
        Inquiry.objects.select_related("customer", "assignee"), pk=inquiry_id
    )
    initial: dict[str, Any] = {"idempotency_key": uuid.uuid4().hex, "status": InquiryStatus.PENDING}
    canned_id = request.GET.get("canned", "")
    if canned_id.isdigit():
        canned = CannedAnswer.objects.filter(pk=int(canned_id), active=True).first()
        if canned is not None:
            initial["body"] = canned.body_for(inquiry.locale)
    article_id = request.GET.get("article", "")
    if article_id.isdigit():
        article = FaqArticle.objects.filter(pk=int(article_id)).first()
        if article is not None:
            initial["body"] = article.body
    context = _detail_context(request, inquiry, ReplyForm(initial=initial))
    return render(request, "console/support/inquiry.html", context)


@require_POST
@staff_required("support.add_message")
def inquiry_reply(request: HttpRequest, inquiry_id: int) -> HttpResponse:
    inquiry = get_object_or_404(Inquiry, pk=inquiry_id)
    form = ReplyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            if data["kind"] == Direction.NOTE:
                services.note_add(inquiry=inquiry, body=data["body"], actor=_staff(request))
                messages.success(request, _("Note added."))
            else:
                services.reply_send(
                    inquiry=inquiry,
                    body=data["body"],
                    idempotency_key=data["idempotency_key"],
                    status=data["status"],
                    actor=_staff(request),
                )
                messages.success(request, _("Reply sent."))
        except ValidationError as exc:
            _errors(request, form, exc)
        else:
            return redirect("console:support_inquiry", inquiry.pk)
    inquiry.refresh_from_db()
    context = _detail_context(request, inquiry, form)
    return render(request, "console/support/inquiry.html", context, status=422)


@require_POST
@staff_required("support.change_inquiry")
def inquiry_change(request: HttpRequest, inquiry_id: int) -> HttpResponse:
    inquiry = get_object_or_404(Inquiry, pk=inquiry_id)
    form = ChangeForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}")
        return redirect("console:support_inquiry", inquiry.pk)
    try:
        services.inquiry_update(
            inquiry=inquiry,
            data={
                "status": form.cleaned_data["status"],
                "priority": form.cleaned_data["priority"],
                "assignee": form.cleaned_data["assignee"] or None,
            },
            actor=_staff(request),
        )
    except ValidationError as exc:
        for key, problems in exc.message_dict.items():
            for problem in problems:
                messages.error(request, f"{key}: {problem}")
    else:
        messages.success(request, _("Inquiry updated."))
    return redirect("console:support_inquiry", inquiry.pk)


# --- FAQ and canned answers -----------------------------------------------------------------


@staff_required("support.view_faqarticle")
def faq_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "")[:500]
    return render(
        request,
        "console/support/faq_list.html",
        {
            "section": "support",
            "articles": selectors.faq_articles(),
            "canned": selectors.canned_answers(active_only=False),
            "q": q,
            "answer": faq.search(q) if q.strip() else None,
        },
    )


@staff_required("support.change_faqarticle")
def faq_edit(request: HttpRequest, article_id: int | None = None) -> HttpResponse:
    article = get_object_or_404(FaqArticle, pk=article_id) if article_id else None
    initial = (
        {
            "key": article.key,
            "locale": article.locale,
            "title": article.title,
            "body": article.body,
            "tags": ", ".join(article.tags),
            "published": article.published,
        }
        if article
        else {}
    )
    form = ArticleForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.faq_article_save(**form.cleaned_data, article=article, actor=_staff(request))
        except ValidationError as exc:
            _errors(request, form, exc)
        else:
            messages.success(request, _("Article saved."))
            return redirect("console:support_faq")
    return render(
        request,
        "console/support/faq_form.html",
        {"section": "support", "form": form, "article": article},
    )


@require_POST
@staff_required("support.delete_faqarticle")
def faq_delete(request: HttpRequest, article_id: int) -> HttpResponse:
    article = get_object_or_404(FaqArticle, pk=article_id)
    services.faq_article_delete(article=article, actor=_staff(request))
    messages.success(request, _("Article deleted."))
    return redirect("console:support_faq")


@staff_required("support.change_cannedanswer")
def canned_edit(request: HttpRequest, canned_id: int | None = None) -> HttpResponse:
    canned = get_object_or_404(CannedAnswer, pk=canned_id) if canned_id else None
    initial = (
        {
            "title": canned.title,
            "body_ja": canned.body_ja,
            "body_en": canned.body_en,
            "active": canned.active,
        }
        if canned
        else {}
    )
    form = CannedForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.canned_answer_save(**form.cleaned_data, canned=canned, actor=_staff(request))
        except ValidationError as exc:
            _errors(request, form, exc)
        else:
            messages.success(request, _("Canned answer saved."))
            return redirect("console:support_faq")
    return render(
        request,
        "console/support/canned_form.html",
        {"section": "support", "form": form, "canned": canned},
    )


@staff_required("support.view_inquiry")
def sla_policies(request: HttpRequest) -> HttpResponse:
    """The first-response and resolution times of each priority (defaults until changed)."""
    if request.method == "POST":
        if not request.user.has_perm("support.change_slapolicy"):
            raise PermissionDenied
        try:
            with transaction.atomic():
                for priority in Priority.values:
                    first = request.POST.get(f"{priority}-first", "")
                    resolution = request.POST.get(f"{priority}-resolution", "")
                    if not (first.isdigit() and resolution.isdigit()):
                        raise ValidationError(
                            {f"{priority}": [_("Enter whole numbers of minutes.")]}
                        )
                    services.sla_policy_save(
                        priority=priority,
                        first_response_minutes=int(first),
                        resolution_minutes=int(resolution),
                        actor=_staff(request),
                    )
        except ValidationError as exc:
            for key, problems in exc.message_dict.items():
                for problem in problems:
                    messages.error(request, f"{key}: {problem}")
        else:
            messages.success(request, _("SLA policies saved."))
            return redirect("console:support_sla")
    rows = [(value, label, *services.sla_minutes(value)) for value, label in Priority.choices]
    return render(request, "console/support/sla.html", {"section": "support", "rows": rows})
