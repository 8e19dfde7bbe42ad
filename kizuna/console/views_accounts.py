"""Console pages of accounts and deals: accounts (roll-up, contacts, timeline), the kanban
board (drag between stages with static/console/accounts.js, or a select and a button
without JavaScript), deal list and page, forecast, activities, my tasks, my customers
(high-touch care with at-risk signals) and the service-level rule."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_POST

from kizuna.accounts import selectors, services
from kizuna.accounts.models import (
    Account,
    ActivityKind,
    ContactRole,
    CustomerCare,
    Deal,
    Outcome,
    Pipeline,
    Stage,
)
from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.core.timeutil import now
from kizuna.customers.models import Customer

CARDS_PER_COLUMN = 20
CARE_PAGE = 50


def _staff_users() -> Any:
    return get_user_model().objects.filter(is_staff=True).order_by("username")


def _apply(form: forms.Form, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        form.add_error(field if field in form.fields else None, errors)


def _flash(request: HttpRequest, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        for error in errors:
            messages.error(request, f"{field}: {error}")


def _back(request: HttpRequest, fallback: str) -> HttpResponse:
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(fallback)


def _get(fn: Any, **kwargs: Any) -> Any:
    from django.http import Http404

    try:
        return fn(**kwargs)
    except NotFound as exc:
        raise Http404(str(exc)) from exc


# --- forms ---------------------------------------------------------------------------------


class AccountForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Company"), max_length=200)
    domain = forms.CharField(label=gettext_lazy("Web domain"), max_length=200, required=False)
    parent = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"),
        required=False,
        label=gettext_lazy("Parent account"),
    )
    owner = forms.ModelChoiceField(
        queryset=_staff_users(), required=False, label=gettext_lazy("Owner")
    )
    named = forms.BooleanField(required=False, label=gettext_lazy("Named account"))
    follow_up_days = forms.IntegerField(
        required=False, label=gettext_lazy("Follow-up every (days)")
    )
    notes = forms.CharField(widget=forms.Textarea, required=False, label=gettext_lazy("Notes"))


class ContactForm(forms.Form):
    customer_id = forms.IntegerField(label=gettext_lazy("Customer ID"))
    role = forms.ChoiceField(choices=ContactRole.choices, label=gettext_lazy("Role"))
    title = forms.CharField(max_length=100, required=False, label=gettext_lazy("Job title"))


class DealForm(forms.Form):
    title = forms.CharField(label=gettext_lazy("Title"), max_length=200)
    account = forms.ModelChoiceField(
        queryset=Account.objects.order_by("name"), required=False, label=gettext_lazy("Account")
    )
    contact = forms.IntegerField(required=False, label=gettext_lazy("Contact (customer ID)"))
    stage = forms.ModelChoiceField(
        queryset=Stage.objects.filter(outcome=Outcome.OPEN).select_related("pipeline"),
        label=gettext_lazy("Stage"),
    )
    amount_yen = forms.IntegerField(label=gettext_lazy("Amount (yen)"), initial=0)
    expected_close = forms.DateField(
        required=False,
        label=gettext_lazy("Expected close"),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    owner = forms.ModelChoiceField(
        queryset=_staff_users(), required=False, label=gettext_lazy("Owner")
    )


class MoveForm(forms.Form):
    stage = forms.ModelChoiceField(
        queryset=Stage.objects.select_related("pipeline"), label=gettext_lazy("Stage")
    )
    reason = forms.CharField(max_length=200, required=False, label=gettext_lazy("Reason"))


class ActivityForm(forms.Form):
    kind = forms.ChoiceField(choices=ActivityKind.choices, label=gettext_lazy("Kind"))
    subject = forms.CharField(max_length=200, label=gettext_lazy("Subject"))
    body = forms.CharField(widget=forms.Textarea, required=False, label=gettext_lazy("Details"))
    due_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Due"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    remind_at = forms.DateTimeField(
        required=False,
        label=gettext_lazy("Reminder"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    assigned_to = forms.ModelChoiceField(
        queryset=_staff_users(), required=False, label=gettext_lazy("Assigned to")
    )
    account = forms.IntegerField(required=False, widget=forms.HiddenInput)
    customer = forms.IntegerField(required=False, widget=forms.HiddenInput)
    deal = forms.IntegerField(required=False, widget=forms.HiddenInput)


class RuleForm(forms.Form):
    top_clv_percent = forms.DecimalField(
        label=gettext_lazy("Top CLV share (%)"), min_value=0, max_value=100, decimal_places=2
    )
    include_named_accounts = forms.BooleanField(
        required=False, label=gettext_lazy("Named accounts' contacts")
    )
    cadence_days = forms.IntegerField(label=gettext_lazy("Follow-up every (days)"))
    default_owner = forms.ModelChoiceField(
        queryset=_staff_users(),
        required=False,
        label=gettext_lazy("Owner of customers without an account owner"),
    )


def _clean(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if v not in (None, "")}


# --- accounts ------------------------------------------------------------------------------


@staff_required("accounts.view_account")
def account_list(request: HttpRequest) -> HttpResponse:
    q = request.GET.get("q", "").strip()[:100]
    mine = request.GET.get("mine") == "1"
    accounts = selectors.account_list(q=q, owner_id=request.user.pk if mine else None)
    return render(
        request,
        "console/accounts/list.html",
        {"page": _page(request, accounts), "q": q, "mine": mine, "now": now()},
    )


@staff_required("accounts.add_account")
def account_new(request: HttpRequest) -> HttpResponse:
    return _account_form(request, None)


@staff_required("accounts.change_account")
def account_edit(request: HttpRequest, account_id: int) -> HttpResponse:
    return _account_form(request, _get(selectors.account_get, account_id=account_id))


def _account_form(request: HttpRequest, account: Account | None) -> HttpResponse:
    initial = {}
    if account is not None:
        initial = {
            "name": account.name,
            "domain": account.domain,
            "parent": account.parent_id,
            "owner": account.owner_id,
            "named": account.named,
            "follow_up_days": account.follow_up_days,
            "notes": account.notes,
        }
    form = AccountForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = dict(form.cleaned_data)
        try:
            if account is None:
                account = services.account_create(data=data, actor=_staff(request))
            else:
                account = services.account_update(account=account, data=data, actor=_staff(request))
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, _("The account was saved."))
            return redirect("console:accounts_detail", account_id=account.pk)
    return render(request, "console/accounts/edit.html", {"form": form, "account": account})


@staff_required("accounts.view_account")
def account_detail(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _get(selectors.account_get, account_id=account_id)
    deals = selectors.deal_list(principal=request.user, account_id=account.pk)[:50]
    return render(
        request,
        "console/accounts/detail.html",
        {
            "account": account,
            "ancestors": selectors.ancestors(account),
            "children": list(account.children.order_by("name")),
            "contacts": list(selectors.contact_list(account=account)),
            "rollup": selectors.account_rollup(account=account),
            "timeline": selectors.account_timeline(account=account, limit=40),
            "deals": list(deals),
            "contact_form": ContactForm(),
            "activity_form": ActivityForm(initial={"account": account.pk, "kind": "call"}),
            "now": now(),
        },
    )


@require_POST
@staff_required("accounts.add_accountcontact")
def contact_add(request: HttpRequest, account_id: int) -> HttpResponse:
    account = _get(selectors.account_get, account_id=account_id)
    form = ContactForm(request.POST)
    if form.is_valid():
        customer = Customer.objects.filter(pk=form.cleaned_data["customer_id"]).first()
        if customer is None:
            messages.error(request, _("No customer with this ID."))
        else:
            try:
                services.contact_add(
                    account=account,
                    customer=customer,
                    role=form.cleaned_data["role"],
                    title=form.cleaned_data["title"],
                    actor=_staff(request),
                )
            except ValidationError as exc:
                _flash(request, exc)
            else:
                messages.success(request, _("The contact was added."))
    else:
        messages.error(request, _("Give the customer ID and the role."))
    return redirect("console:accounts_detail", account_id=account.pk)


@require_POST
@staff_required("accounts.add_activity")
def activity_add(request: HttpRequest) -> HttpResponse:
    form = ActivityForm(request.POST)
    if form.is_valid():
        data = _clean(dict(form.cleaned_data))
        deal_id = data.get("deal")
        if deal_id:
            _get(selectors.access_deal, principal=request.user, deal_id=deal_id)
        try:
            services.activity_log(data=data, actor=_staff(request))
        except ValidationError as exc:
            _flash(request, exc)
        else:
            messages.success(request, _("The activity was logged."))
    else:
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{field}: {error}")
    return _back(request, "console:accounts_tasks")


# --- deals ---------------------------------------------------------------------------------


def _pipeline(request: HttpRequest) -> Pipeline | None:
    raw = request.GET.get("pipeline", "")
    try:
        return selectors.pipeline_get(pipeline_id=int(raw) if raw.isdigit() else None)
    except NotFound:
        return None


def _chosen_pipeline(request: HttpRequest, pipelines: list[Pipeline]) -> Pipeline | None:
    """The ?pipeline= one of `pipelines` (None when it is not one), else the first."""
    raw = request.GET.get("pipeline", "")
    if not raw:
        return pipelines[0] if pipelines else None
    return next((p for p in pipelines if raw.isdigit() and p.pk == int(raw)), None)


def _card_context(request: HttpRequest) -> dict[str, Any]:
    """What every card needs, computed once per page rather than once per card: the deal
    page's URL prefix and whether the cards carry a tick box for the column's move form."""
    return {
        "deal_prefix": reverse("console:accounts_deal", args=[0])[: -len("0/")],
        "can_move": request.user.has_perm("accounts.change_deal"),
    }


@staff_required("accounts.view_deal")
def board(request: HttpRequest) -> HttpResponse:
    """The kanban board: open stages as columns with the count and sums of every visible
    open deal, and the first CARDS_PER_COLUMN cards by expected close ("Load more" brings
    the next ones per column)."""
    pipelines = list(Pipeline.objects.order_by("position", "id"))
    pipeline = _chosen_pipeline(request, pipelines)
    stages = selectors.stage_list(pipeline=pipeline) if pipeline else []
    columns = (
        selectors.kanban(
            principal=request.user, pipeline=pipeline, per_column=CARDS_PER_COLUMN, stages=stages
        )
        if pipeline
        else []
    )
    return render(
        request,
        "console/accounts/board.html",
        {
            "pipeline": pipeline,
            "pipelines": pipelines,
            "columns": columns,
            "stages": stages,
            "per_column": CARDS_PER_COLUMN,
            "mine_only": not selectors.is_manager(request.user),
            **_card_context(request),
        },
    )


@staff_required("accounts.view_deal")
def board_column(request: HttpRequest, stage_id: int) -> HttpResponse:
    """The next CARDS_PER_COLUMN cards of one column after the `after` cursor: the cards
    alone for the board's "Load more" (htmx), a page of their own without JavaScript."""
    stage = (
        Stage.objects.select_related("pipeline").filter(pk=stage_id, outcome=Outcome.OPEN).first()
        if 0 < stage_id < 2**62
        else None
    )
    if stage is None:
        from django.http import Http404

        raise Http404(_("No such open stage."))
    after = None
    if request.GET.get("after"):
        try:
            after = selectors.parse_cursor(request.GET["after"])
        except ValueError:
            return HttpResponseBadRequest(_("after: not a position in this column."))
    cards, more = selectors.column_cards(
        principal=request.user, stage=stage, after=after, limit=CARDS_PER_COLUMN
    )
    context = {
        "stage": stage,
        "pipeline": stage.pipeline,
        "cards": cards,
        "more": more,
        "cursor": selectors.card_cursor(cards[-1]) if cards else "",
        "stages": selectors.stage_list(pipeline=stage.pipeline),
        **_card_context(request),
    }
    template = (
        "console/accounts/_cards.html"
        if request.htmx  # type: ignore[attr-defined]
        else "console/accounts/board_column.html"
    )
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


class MoveManyForm(forms.Form):
    deal = forms.ModelMultipleChoiceField(queryset=Deal.objects.none(), label=gettext_lazy("Deals"))
    stage = forms.ModelChoiceField(
        queryset=Stage.objects.select_related("pipeline"), label=gettext_lazy("Stage")
    )
    reason = forms.CharField(max_length=200, required=False, label=gettext_lazy("Reason"))

    def __init__(self, *args: Any, principal: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["deal"]
        assert isinstance(field, forms.ModelMultipleChoiceField)
        field.queryset = selectors.deals_visible(principal=principal)  # others' deals: invalid


@require_POST
@staff_required("accounts.change_deal")
def deals_move(request: HttpRequest) -> HttpResponse:
    """The board's no-JavaScript move: the ticked cards of a column to the chosen stage,
    all or none (services.deals_move)."""
    form = MoveManyForm(request.POST, principal=request.user)
    if not form.is_valid():
        for field, errors in form.errors.items():
            for error in errors:
                messages.error(request, f"{form.fields[field].label}: {error}")
        return _back(request, "console:accounts_board")
    try:
        moved = services.deals_move(
            deals=list(form.cleaned_data["deal"]),
            stage=form.cleaned_data["stage"],
            reason=form.cleaned_data["reason"],
            actor=_staff(request),
        )
    except ValidationError as exc:
        _flash(request, exc)
    else:
        messages.success(
            request,
            ngettext(
                "%(n)d deal moved to %(stage)s.", "%(n)d deals moved to %(stage)s.", len(moved)
            )
            % {"n": len(moved), "stage": form.cleaned_data["stage"].name},
        )
    return _back(request, "console:accounts_board")


class PipelineForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    stages = forms.CharField(
        label=gettext_lazy("Stages"),
        widget=forms.Textarea(attrs={"rows": 7}),
        help_text=gettext_lazy(
            "One stage a line, in order: name, probability (0-100) and, for the closing "
            "stages, won or lost; e.g. Proposal, 50 or Won, 100, won."
        ),
        initial="Lead, 10\nProposal, 50\nNegotiation, 80\nWon, 100, won\nLost, 0, lost",
    )

    def clean_stages(self) -> list[dict[str, Any]]:
        stages, problems = [], []
        for number, line in enumerate(self.cleaned_data["stages"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [part.strip() for part in line.split(",")]
            if len(parts) not in (2, 3) or not parts[1].isdigit():
                problems.append(
                    _("Line %(n)d: write a name, a probability and optionally won or lost.")
                    % {"n": number}
                )
                continue
            stage: dict[str, Any] = {"name": parts[0], "probability": int(parts[1])}
            if len(parts) == 3:
                stage["outcome"] = parts[2].lower()
            stages.append(stage)
        if problems:
            raise ValidationError(problems)
        return stages


@staff_required("accounts.view_pipeline")
def pipelines(request: HttpRequest) -> HttpResponse:
    """The pipelines with their stages (probability, outcome); a form to add one."""
    form = PipelineForm(request.POST or None)
    if request.method == "POST":
        if not request.user.has_perm("accounts.add_pipeline"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        if form.is_valid():
            try:
                pipeline = services.pipeline_create(
                    name=form.cleaned_data["name"],
                    stages=form.cleaned_data["stages"],
                    actor=_staff(request),
                )
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error("name" if field == "name" else "stages", errors)
            else:
                messages.success(request, _("The pipeline was created."))
                return redirect(f"{reverse('console:accounts_board')}?pipeline={pipeline.pk}")
    return render(
        request,
        "console/accounts/pipelines.html",
        {"pipelines": list(selectors.pipeline_list()), "form": form},
    )


@staff_required("accounts.change_pipeline")
def pipeline_edit(request: HttpRequest, pipeline_id: int) -> HttpResponse:
    """Rename a pipeline and edit its stages (the same one-stage-a-line form)."""
    pipeline = get_object_or_404(Pipeline, pk=pipeline_id)
    lines = "\n".join(
        f"{s.name}, {s.probability}" + (f", {s.outcome}" if s.outcome != Outcome.OPEN else "")
        for s in pipeline.stages.order_by("position", "id")
    )
    form = PipelineForm(request.POST or None, initial={"name": pipeline.name, "stages": lines})
    if request.method == "POST" and form.is_valid():
        try:
            services.pipeline_update(
                pipeline=pipeline,
                name=form.cleaned_data["name"],
                stages=form.cleaned_data["stages"],
                actor=_staff(request),
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error("name" if field == "name" else "stages", errors)
        else:
            messages.success(request, _("The pipeline was saved."))
            return redirect("console:accounts_pipelines")
    return render(
        request, "console/accounts/pipeline_edit.html", {"pipeline": pipeline, "form": form}
    )


@staff_required("accounts.view_deal")
def deal_list(request: HttpRequest) -> HttpResponse:
    pipeline = _pipeline(request)
    status = request.GET.get("status", "open")
    q = request.GET.get("q", "").strip()[:100]
    deals = selectors.deal_list(
        principal=request.user,
        pipeline_id=pipeline.pk if pipeline else None,
        status=status if status in Outcome.values else None,
        q=q,
    )
    return render(
        request,
        "console/accounts/deals.html",
        {
            "page": _page(request, deals),
            "pipeline": pipeline,
            "pipelines": list(Pipeline.objects.order_by("position", "id")),
            "status": status,
            "statuses": Outcome.choices,
            "q": q,
        },
    )


@staff_required("accounts.add_deal")
def deal_new(request: HttpRequest) -> HttpResponse:
    form = DealForm(
        request.POST or None,
        initial={"account": request.GET.get("account"), "owner": request.user.pk},
    )
    if request.method == "POST" and form.is_valid():
        try:
            deal = services.deal_create(data=_clean(dict(form.cleaned_data)), actor=_staff(request))
        except ValidationError as exc:
            _apply(form, exc)
        else:
            messages.success(request, _("The deal was created."))
            return redirect("console:accounts_deal", deal_id=deal.pk)
    return render(request, "console/accounts/deal_new.html", {"form": form})


@staff_required("accounts.view_deal")
def deal_detail(request: HttpRequest, deal_id: int) -> HttpResponse:
    deal = _get(selectors.access_deal, principal=request.user, deal_id=deal_id)
    return render(
        request,
        "console/accounts/deal.html",
        {
            "deal": deal,
            "stages": selectors.stage_list(pipeline=deal.pipeline),
            "activities": list(selectors.activity_list(deal=deal)[:100]),
            "activity_form": ActivityForm(
                initial={"deal": deal.pk, "account": deal.account_id, "kind": "call"}
            ),
        },
    )


@require_POST
@staff_required("accounts.change_deal")
def deal_move(request: HttpRequest, deal_id: int) -> HttpResponse:
    """Move a deal: from the board's drag and drop (answers JSON) or from the select and
    button of a card or the deal page (redirects back)."""
    deal = _get(selectors.access_deal, principal=request.user, deal_id=deal_id)
    wants_json = "application/json" in request.headers.get("Accept", "")
    form = MoveForm(request.POST)
    if not form.is_valid():
        if wants_json:
            return JsonResponse({"ok": False, "errors": form.errors}, status=422)
        messages.error(request, _("Choose a stage."))
        return _back(request, "console:accounts_board")
    try:
        deal = services.deal_move(
            deal=deal,
            stage=form.cleaned_data["stage"],
            reason=form.cleaned_data["reason"],
            actor=_staff(request),
        )
    except ValidationError as exc:
        if wants_json:
            return JsonResponse({"ok": False, "errors": exc.message_dict}, status=422)
        _flash(request, exc)
    else:
        if wants_json:
            return JsonResponse({"ok": True, "deal": deal.pk, "stage": deal.stage_id})
        messages.success(
            request, _("%(deal)s moved to %(stage)s.") % {"deal": deal, "stage": deal.stage.name}
        )
    return _back(request, "console:accounts_board")


@staff_required("accounts.view_deal")
def forecast(request: HttpRequest) -> HttpResponse:
    pipeline = _pipeline(request)
    result = selectors.forecast(principal=request.user, pipeline=pipeline) if pipeline else None
    return render(
        request,
        "console/accounts/forecast.html",
        {
            "pipeline": pipeline,
            "pipelines": list(Pipeline.objects.order_by("position", "id")),
            "forecast": result,
        },
    )


# --- my tasks, my customers, service levels ------------------------------------------------


@staff_required("accounts.view_activity")
def my_tasks(request: HttpRequest) -> HttpResponse:
    done = request.GET.get("done") == "1"
    tasks = selectors.my_tasks(user=request.user, include_done=done)
    return render(
        request,
        "console/accounts/tasks.html",
        {"page": _page(request, tasks), "done": done, "now": now()},
    )


@require_POST
@staff_required("accounts.change_activity")
def task_done(request: HttpRequest, activity_id: int) -> HttpResponse:
    task = selectors.activity_visible(principal=request.user, activity_id=activity_id)
    if task is None:
        from django.http import Http404

        raise Http404
    try:
        services.task_complete(activity=task, actor=_staff(request))
    except ValidationError as exc:
        _flash(request, exc)
    else:
        messages.success(request, _("Task done."))
    return _back(request, "console:accounts_tasks")


@staff_required("accounts.view_customercare")
def my_customers(request: HttpRequest) -> HttpResponse:
    """The signed-in owner's high-touch customers (CARE_PAGE a page), overdue first."""
    risk = request.GET.get("risk") == "1"
    rows = selectors.my_customers(owner=request.user, risk_only=risk)
    page = Paginator(rows, CARE_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "console/accounts/care.html",
        {
            "page": page,
            "rows": selectors.care_rows(page.object_list),
            "summary": selectors.care_summary(owner=request.user),
            "risk": risk,
            "overdue_accounts": list(selectors.overdue_accounts(owner=request.user)[:20]),
        },
    )


@staff_required("accounts.view_customercare")
def service_levels(request: HttpRequest) -> HttpResponse:
    rule = services.rule_current()
    form = RuleForm(
        request.POST or None,
        initial={
            "top_clv_percent": rule.top_clv_percent,
            "include_named_accounts": rule.include_named_accounts,
            "cadence_days": rule.cadence_days,
            "default_owner": rule.default_owner_id,
        },
    )
    if request.method == "POST":
        if not request.user.has_perm("accounts.change_servicelevelrule"):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        if form.is_valid():
            try:
                services.rule_update(data=dict(form.cleaned_data), actor=_staff(request))
                result = services.service_levels_apply()
            except ValidationError as exc:
                _apply(form, exc)
            else:
                messages.success(
                    request,
                    _("%(n)d customers are high-touch (%(in)d entered, %(out)d left).")
                    % {"n": result.high, "in": result.entered, "out": result.left},
                )
                return redirect("console:accounts_service_levels")
    return render(request, "console/accounts/service_levels.html", {"form": form, "rule": rule})


# --- customer 360 panel -------------------------------------------------------------------


def _customer_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    """The customer as a contact: their accounts, service level and the activities on them
    (the contact's timeline), with the form to log one."""
    links = list(customer.account_links.select_related("account").order_by("id")[:10])
    care = CustomerCare.objects.select_related("owner").filter(customer=customer).first()
    activities = list(selectors.activity_list(customer_id=customer.pk)[:10])
    return {
        "links": links,
        "care": care,
        "activities": activities,
        "activity_form": ActivityForm(initial={"customer": customer.pk, "kind": "call"}),
        "now": now(),
    }


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="accounts",
            template="console/accounts/_customer_panel.html",
            context=_customer_panel,
            permission="accounts.view_activity",
            order=60,
        )
    )
