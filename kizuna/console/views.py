"""Views of the staff console. Each one authenticates, validates with a form, calls one
selector or service and renders; the rules live in the apps' services and selectors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import AbstractBaseUser
from django.contrib.auth.views import LoginView
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Page, Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from django_ratelimit.decorators import ratelimit

from kizuna.catalog import selectors as catalog_selectors
from kizuna.commerce import selectors as commerce_selectors
from kizuna.commerce import services as commerce_services
from kizuna.commerce.models import Order
from kizuna.console.forms import (
    ConsentForm,
    CustomerFilterForm,
    IdentityForm,
    OrderFilterForm,
    ProductFilterForm,
    ProfileForm,
    RefundForm,
)
from kizuna.console.panels import customer_panels
from kizuna.core.errors import NotFound
from kizuna.core.selectors import worker_status
from kizuna.core.timeutil import now
from kizuna.customers import selectors as customer_selectors
from kizuna.customers import services as customer_services
from kizuna.customers.models import Customer
from kizuna.iam.masking import masked_search_q, masks_personal_data

PAGE_SIZE = 50
TIMELINE_PAGE = 20
LOGIN_RATE = "10/m"

View = Callable[..., HttpResponse]


def staff_required(*perms: str) -> Callable[[View], View]:
    """Anonymous → login page; signed in without every permission in `perms` → 403."""

    def decorate(view: View) -> View:
        return login_required(permission_required(perms, raise_exception=True)(view))

    return decorate


def _staff(request: HttpRequest) -> AbstractBaseUser:
    """The signed-in staff user (views that write are behind `staff_required`)."""
    if not isinstance(request.user, AbstractBaseUser):
        raise PermissionDenied
    return request.user


def _page(request: HttpRequest, items: Any) -> Page:
    return Paginator(items, PAGE_SIZE).get_page(request.GET.get("page"))


def _htmx_vary(response: HttpResponse) -> HttpResponse:
    # Full pages and HTMX partials share URLs: caches must keep them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- authentication -----------------------------------------------------------------------


@method_decorator(
    ratelimit(group="console.login", key="ip", rate=LOGIN_RATE, method="POST", block=False),
    name="post",
)
class ConsoleLoginView(LoginView):
    template_name = "console/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if getattr(request, "limited", False):
            return render(request, "console/429.html", status=429)
        return super().post(request, *args, **kwargs)


# --- dashboard ----------------------------------------------------------------------------


CHART_WIDTH, CHART_HEIGHT, CHART_TOP, CHART_BOTTOM, CHART_SIDE = 960, 280, 30, 36, 24


def _revenue_chart(months: list[dict]) -> dict[str, Any]:
    """Bar geometry for the server-side SVG chart (no inline styles: the CSP forbids them)."""
    peak = max((m["net_revenue"] for m in months), default=0)
    plot = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM
    slot = (CHART_WIDTH - 2 * CHART_SIDE) / max(len(months), 1)
    bars = []
    for i, m in enumerate(months):
        height = round(plot * max(m["net_revenue"], 0) / peak, 1) if peak else 0
        bars.append(
            {
                **m,
                "x": round(CHART_SIDE + i * slot + slot * 0.15, 1),
                "width": round(slot * 0.7, 1),
                "y": round(CHART_TOP + plot - height, 1),
                "height": height,
                "label_x": round(CHART_SIDE + i * slot + slot / 2, 1),
                "show_label": i % 3 == 0 or i == len(months) - 1,
            }
        )
    return {
        "bars": bars,
        "peak": peak,
        "width": CHART_WIDTH,
        "height": CHART_HEIGHT,
        "axis_y": CHART_HEIGHT - CHART_BOTTOM,
        "label_y": CHART_HEIGHT - CHART_BOTTOM + 18,
        "peak_y": CHART_TOP - 12,
        "top_y": CHART_TOP,
        "left": CHART_SIDE,
        "right": CHART_WIDTH - CHART_SIDE,
    }


@staff_required("customers.view_customer", "commerce.view_order")
def dashboard(request: HttpRequest) -> HttpResponse:
    months = commerce_selectors.monthly_revenue(months=24)
    context = {
        "totals": customer_selectors.customer_totals(),
        "last30": commerce_selectors.sales_summary(since=now() - timedelta(days=30)),
        "all_time": commerce_selectors.sales_summary(),
        "repeat": commerce_selectors.repeat_purchase_rate(),
        "worker": worker_status(),
        "chart": _revenue_chart(months),
    }
    return render(request, "console/dashboard.html", context)


# --- customers ----------------------------------------------------------------------------


@staff_required("customers.view_customer")
def customer_list(request: HttpRequest) -> HttpResponse:
    form = CustomerFilterForm(request.GET)
    kwargs = form.selector_kwargs()
    if kwargs["search"] and masks_personal_data(request.user):
        # Masked roles find customers by number or external id only (docs/privacy.md).
        search = kwargs.pop("search")
        qs = customer_selectors.customer_list(**kwargs).filter(masked_search_q(search)).distinct()
    else:
        qs = customer_selectors.customer_list(**kwargs)
    page = _page(request, qs)
    customers = list(page.object_list)
    stats = commerce_selectors.customer_order_stats(customer_ids=[c.pk for c in customers])
    rows = [(c, stats.get(c.pk)) for c in customers]
    context = {"form": form, "page": page, "rows": rows}
    template = (
        "console/customers/_results.html"
        if request.htmx  # type: ignore[attr-defined]
        else "console/customers/list.html"
    )
    return _htmx_vary(render(request, template, context))


def _customer_or_404(request: HttpRequest, customer_id: int) -> Customer:
    try:
        return customer_selectors.access_customer(principal=request.user, customer_id=customer_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _customer_360(
    request: HttpRequest,
    customer: Customer,
    *,
    identity_form: IdentityForm | None = None,
    consent_form: ConsentForm | None = None,
    status: int = 200,
) -> HttpResponse:
    stats = commerce_selectors.customer_order_stats(customer_ids=[customer.pk]).get(customer.pk)
    events, more = customer_selectors.timeline_page(customer=customer, limit=TIMELINE_PAGE)
    traits = customer.traits or {}
    context = {
        "customer": customer,
        "stats": stats,
        "aov": stats["net_spend"] // stats["orders"] if stats and stats["orders"] else None,
        "identities": customer_selectors.identity_list(customer=customer),
        "consent_state": customer_selectors.consent_state(customer=customer),
        "consent_history": customer_selectors.consent_history(customer=customer),
        "traits": [(d, traits.get(d.key)) for d in customer_selectors.trait_definitions()],
        "orders": commerce_selectors.order_list(customer=customer)[:10],
        "events": events,
        "more_events": more,
        # Sections contributed by other domains (scores, loyalty, ...): see console/panels.py.
        "panels": customer_panels(request, customer),
        "identity_form": identity_form or IdentityForm(),
        "consent_form": consent_form or ConsentForm(),
    }
    return render(request, "console/customers/detail.html", context, status=status)


@staff_required("customers.view_customer")
def customer_detail(request: HttpRequest, customer_id: int) -> HttpResponse:
    return _customer_360(request, _customer_or_404(request, customer_id))


@staff_required("customers.view_customer", "customers.view_event")
def customer_timeline(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        before = None
    events, more = customer_selectors.timeline_page(
        customer=customer, limit=TIMELINE_PAGE, before_event_id=before
    )
    context = {"customer": customer, "events": events, "more_events": more}
    template = (
        "console/customers/_timeline.html"
        if request.htmx  # type: ignore[attr-defined]
        else "console/customers/timeline.html"
    )
    return _htmx_vary(render(request, template, context))


@staff_required("customers.view_customer", "customers.change_customer")
def customer_edit(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    definitions = list(customer_selectors.trait_definitions())
    form = ProfileForm(request.POST or None, customer=customer, definitions=definitions)
    if request.method == "POST" and form.is_valid():
        try:
            customer_services.customer_update(
                customer=customer, data=form.service_data(), actor=_staff(request), source="console"
            )
        except ValidationError as exc:
            form.add_service_errors(exc)
        else:
            messages.success(request, _("The profile was saved."))
            return redirect("console:customer_detail", customer_id=customer.pk)
    status = 400 if request.method == "POST" else 200
    return render(
        request, "console/customers/edit.html", {"customer": customer, "form": form}, status=status
    )


@staff_required("customers.view_customer", "customers.add_identity")
@require_POST
def identity_add(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    form = IdentityForm(request.POST)
    if form.is_valid():
        try:
            customer_services.identity_add(
                customer=customer,
                kind=form.cleaned_data["kind"],
                value=form.cleaned_data["value"],
                source="console",
                actor=_staff(request),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("The identity was linked."))
            return redirect("console:customer_detail", customer_id=customer.pk)
    return _customer_360(request, customer, identity_form=form, status=400)


@staff_required("customers.view_customer", "customers.add_consententry")
@require_POST
def consent_add(request: HttpRequest, customer_id: int) -> HttpResponse:
    customer = _customer_or_404(request, customer_id)
    form = ConsentForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            customer_services.consent_record(
                customer=customer,
                purpose=data["purpose"],
                channel=data["channel"],
                status=data["status"],
                legal_basis=data["legal_basis"],
                source="console",
                notice_version=data["notice_version"],
                evidence={"note": data["note"]} if data["note"] else None,
                recorded_by=request.user,
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                for error in errors:
                    form.add_error(field if field in form.fields else None, error)
        else:
            messages.success(request, _("The consent decision was recorded."))
            return redirect("console:customer_detail", customer_id=customer.pk)
    return _customer_360(request, customer, consent_form=form, status=400)


# --- products -----------------------------------------------------------------------------


@staff_required("catalog.view_product")
def product_list(request: HttpRequest) -> HttpResponse:
    categories = [(c.slug, c.name) for c in catalog_selectors.category_list()]
    form = ProductFilterForm(request.GET, categories=categories)
    data = form.cleaned_data if form.is_valid() else {}
    products = catalog_selectors.product_list(
        search=data.get("q") or "",
        category=data.get("category") or "",
        active={"yes": True, "no": False}.get(data.get("active") or ""),
    )
    return render(
        request, "console/products/list.html", {"form": form, "page": _page(request, products)}
    )


@staff_required("catalog.view_product")
def product_detail(request: HttpRequest, product_id: int) -> HttpResponse:
    try:
        product = catalog_selectors.product_get(product_id=product_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc
    return render(request, "console/products/detail.html", {"product": product})


# --- orders -------------------------------------------------------------------------------


@staff_required("commerce.view_order")
def order_list(request: HttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET)
    data = form.cleaned_data if form.is_valid() else {}
    orders = commerce_selectors.order_list(
        search=data.get("q") or "", status=data.get("status") or ""
    )
    return render(
        request, "console/orders/list.html", {"form": form, "page": _page(request, orders)}
    )


def _order_or_404(order_id: int) -> Order:
    try:
        return commerce_selectors.order_get(order_id=order_id)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


def _order_page(
    request: HttpRequest, order: Order, refund_form: RefundForm | None = None, status: int = 200
) -> HttpResponse:
    context = {
        "order": order,
        "remaining": order.total_minor - order.refunded_minor,
        "refund_form": refund_form or RefundForm(currency=order.currency),
    }
    return render(request, "console/orders/detail.html", context, status=status)


@staff_required("commerce.view_order")
def order_detail(request: HttpRequest, order_id: int) -> HttpResponse:
    return _order_page(request, _order_or_404(order_id))


@staff_required("commerce.view_order", "commerce.add_refund")
@require_POST
def refund_add(request: HttpRequest, order_id: int) -> HttpResponse:
    order = _order_or_404(order_id)
    form = RefundForm(request.POST, currency=order.currency)
    if form.is_valid():
        try:
            commerce_services.refund_create(
                order=order,
                amount_minor=form.cleaned_data["amount"],
                idempotency_key=form.cleaned_data["idempotency_key"],
                reason=form.cleaned_data["reason"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                target = {"amount_minor": "amount"}.get(field, field)
                for error in errors:
                    form.add_error(target if target in form.fields else None, error)
        else:
            messages.success(request, _("The refund was recorded."))
            return redirect("console:order_detail", order_id=order.pk)
    return _order_page(request, order, refund_form=form, status=400)
