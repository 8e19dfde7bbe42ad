"""Console pages of audiences: the segment list, the builder (conditions added from menus,
live count and sample members while editing, through HTMX), a segment's page with its size
over time, members, refresh and (static segments) the uploaded list."""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go
from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console.analytics_charts import ACCENT, _layout, _plain
from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _htmx_vary, _page, _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.customers.models import Customer
from kizuna.segments import rules as rule_language
from kizuna.segments import selectors, services
from kizuna.segments.models import Segment, SegmentKind, SegmentSnapshot

SAMPLE_SIZE = 10
OP_LABELS = {
    "eq": gettext_lazy("is"),
    "neq": gettext_lazy("is not"),
    "in": gettext_lazy("is one of"),
    "not_in": gettext_lazy("is none of"),
    "contains": gettext_lazy("contains"),
    "not_contains": gettext_lazy("does not contain"),
    "starts_with": gettext_lazy("starts with"),
    "is_set": gettext_lazy("is set"),
    "is_not_set": gettext_lazy("is not set"),
    "gt": gettext_lazy("more than"),
    "gte": gettext_lazy("at least"),
    "lt": gettext_lazy("less than"),
    "lte": gettext_lazy("at most"),
    "between": gettext_lazy("between"),
    "before": gettext_lazy("before"),
    "after": gettext_lazy("after"),
    "within_last_days": gettext_lazy("within the last N days"),
    "more_than_days_ago": gettext_lazy("more than N days ago"),
    "is": gettext_lazy("is"),
    "includes": gettext_lazy("includes"),
    "excludes": gettext_lazy("excludes"),
}
EMPTY_RULES = {"version": rule_language.VERSION, "match": "all", "conditions": []}


def _segment(segment_id: int) -> Segment:
    try:
        return selectors.segment_get(segment_id=segment_id)
    except NotFound as exc:
        from django.http import Http404

        raise Http404 from exc


def segments_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    memberships = list(selectors.customer_segments(customer=customer)[:50])
    return {"memberships": memberships} if memberships else None


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="segments",
            template="console/segments/_customer_panel.html",
            context=segments_panel,
            permission="segments.view_segment",
            order=60,
        )
    )


# --- the field menu -------------------------------------------------------------------------


def _menu(ctx: rule_language.Context) -> list[tuple[str, list[tuple[str, str]]]]:
    """(group, [(field name, label)]) for the "add a condition" menu."""
    groups: dict[str, list[tuple[str, str]]] = {}
    for spec in rule_language.field_menu(ctx):
        groups.setdefault(str(spec.group), []).append((spec.name, str(spec.label)))
    return list(groups.items())


def _choices_of(spec: rule_language.FieldSpec, ctx: rule_language.Context) -> list[tuple[Any, str]]:
    if spec.name == "loyalty.tier":
        return [(code, code) for code in ctx.tiers]
    if spec.name == "segment":
        return [(ref.id, ref.name) for ref in ctx.segments.values()]
    return [(value, str(label)) for value, label in spec.choices]


def _field_inputs(
    spec: rule_language.FieldSpec | None, ctx: rule_language.Context
) -> dict[str, Any]:
    if spec is None:
        return {"spec": None}
    params = []
    for key, param in spec.params.items():
        choices = [(c, c) for c in param.choices]
        params.append(
            {"key": key, "kind": param.kind, "required": param.required, "choices": choices}
        )
    return {
        "spec": spec,
        "ops": [(op, OP_LABELS[op]) for op in spec.ops],
        "choices": _choices_of(spec, ctx),
        "params": params,
    }


# --- building a condition from the menu's inputs ---------------------------------------------


def _scalar(spec: rule_language.FieldSpec, raw: str, ctx: rule_language.Context) -> Any:
    raw = raw.strip()
    choices = [value for value, _label in _choices_of(spec, ctx)]
    if choices and all(isinstance(c, int) for c in choices):
        return int(raw) if raw.lstrip("-").isdigit() else raw
    if spec.type in ("number", "count"):
        try:
            number = float(raw)
        except ValueError:
            return raw
        return int(number) if number.is_integer() else number
    return raw


def condition_from_inputs(post: Any, ctx: rule_language.Context) -> dict[str, Any]:
    """A rule condition from the builder's "add" inputs (strings), typed by the field's spec.
    Whatever is still wrong is reported by validation with the condition's path."""
    name = post.get("new_field", "")
    comp = rule_language.Compilation(ctx)
    spec = comp.field_spec(name)
    op = post.get("new_op", "")
    condition: dict[str, Any] = {"field": name, "op": op}
    if spec is None:
        return condition
    raw, raw2 = post.get("new_value", ""), post.get("new_value2", "")
    if op in rule_language.NO_VALUE:
        pass
    elif op == "is":
        condition["value"] = raw in ("true", "on", "1", "yes")
    elif op in ("within_last_days", "more_than_days_ago"):
        condition["value"] = int(raw) if raw.strip().isdigit() else raw
    elif op == "between":
        condition["value"] = [_scalar(spec, raw, ctx), _scalar(spec, raw2, ctx)]
    elif op in ("in", "not_in", "includes", "excludes"):
        picked = post.getlist("new_values") if hasattr(post, "getlist") else []
        items = picked or [part for part in raw.split(",") if part.strip()]
        condition["value"] = [_scalar(spec, item, ctx) for item in items]
    else:
        condition["value"] = _scalar(spec, raw, ctx)
    for key, param in spec.params.items():
        value = post.get(f"new_param_{key}", "").strip()
        if param.kind == "where":
            prop = post.get("new_where_property", "").strip()
            if prop:
                where_op = post.get("new_where_op", "eq")
                where_value: Any = post.get("new_where_value", "")
                if where_op in ("gt", "gte", "lt", "lte"):
                    try:
                        where_value = float(where_value)
                        where_value = int(where_value) if where_value.is_integer() else where_value
                    except ValueError:
                        pass
                item: dict[str, Any] = {"property": prop, "op": where_op}
                if where_op not in rule_language.NO_VALUE:
                    item["value"] = where_value
                condition["where"] = [item]
        elif value:
            condition[key] = int(value) if param.kind == "days" and value.isdigit() else value
    return condition


def describe(condition: Any, ctx: rule_language.Context) -> str:
    """A condition in words for the builder's list."""
    if not isinstance(condition, dict):
        return str(condition)
    if "conditions" in condition:
        inner = (_(" and ") if condition.get("match", "all") == "all" else _(" or ")).join(
            describe(c, ctx) for c in condition.get("conditions", [])
        )
        text = f"({inner})"
        return _("not %(group)s") % {"group": text} if condition.get("negate") else text
    spec = rule_language.Compilation(ctx).field_spec(condition.get("field"))
    label = str(spec.label) if spec else str(condition.get("field"))
    op = str(OP_LABELS.get(condition.get("op", ""), condition.get("op", "")))
    value = condition.get("value", "")
    if spec and spec.name == "segment":
        names = {ref.id: ref.name for ref in ctx.segments.values()}
        values = value if isinstance(value, list) else [value]
        value = ", ".join(names.get(v, f"#{v}") for v in values)
    elif isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    elif isinstance(value, bool):
        value = _("yes") if value else _("no")
    extras = []
    if condition.get("event_type"):
        extras.append(f"“{condition['event_type']}”")
    if condition.get("purpose"):
        extras.append(f"{condition['purpose']}/{condition.get('channel', '')}")
    if condition.get("within_days"):
        extras.append(_("in the last %(n)s days") % {"n": condition["within_days"]})
    for item in condition.get("where") or []:
        extras.append(f"{item.get('property')} {item.get('op')} {item.get('value', '')}".strip())
    head = f"{label} {' '.join(extras)}".strip()
    return f"{head} {op} {value}".strip()


# --- forms ------------------------------------------------------------------------------------


class SegmentForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)
    description = forms.CharField(
        label=gettext_lazy("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("CSV file"))
    key = forms.ChoiceField(
        label=gettext_lazy("Column without a header holds"),
        choices=[
            ("email", gettext_lazy("Emails")),
            ("external_id", gettext_lazy("External ids")),
            ("customer_id", gettext_lazy("Customer ids")),
        ],
    )
    replace = forms.BooleanField(
        label=gettext_lazy("Replace the list (otherwise add to it)"), required=False, initial=True
    )
    skip_unknown = forms.BooleanField(
        label=gettext_lazy("Skip rows that match no customer"), required=False
    )


def _rules_from(post: Any) -> Any:
    text = post.get("rules", "")
    try:
        return json.loads(text) if text.strip() else dict(EMPTY_RULES)
    except json.JSONDecodeError as exc:
        raise ValidationError({"rules": [_("Not valid JSON: %(e)s") % {"e": exc.msg}]}) from exc


def _errors(exc: ValidationError) -> list[str]:
    return [f"{path}: {message}" for path, items in exc.message_dict.items() for message in items]


def _preview(rules: Any, self_id: int | None) -> dict[str, Any]:
    try:
        members = selectors.rules_preview(rules=rules, self_id=self_id)
        return {
            "count": members.count(),
            "sample": list(members.order_by("-pk")[:SAMPLE_SIZE]),
            "errors": [],
        }
    except ValidationError as exc:
        return {"count": None, "sample": [], "errors": _errors(exc)}


def _builder_context(rules: Any, segment: Segment | None, notes: list[str]) -> dict[str, Any]:
    ctx = selectors.rule_context(self_id=segment.pk if segment else None)
    conditions = rules.get("conditions", []) if isinstance(rules, dict) else []
    return {
        "rules_json": json.dumps(rules, ensure_ascii=False, indent=1),
        "match": rules.get("match", "all") if isinstance(rules, dict) else "all",
        "conditions": [describe(c, ctx) for c in conditions],
        "menu": _menu(ctx),
        "notes": notes,
        "preview": _preview(rules, segment.pk if segment else None),
        "segment": segment,
    }


# --- views ------------------------------------------------------------------------------------


@staff_required("segments.view_segment")
def segment_list(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "console/segments/list.html",
        {"page": _page(request, selectors.segment_list())},
    )


def _edit(request: HttpRequest, segment: Segment | None, kind: str) -> HttpResponse:
    notes: list[str] = []
    if request.method == "POST":
        form = SegmentForm(request.POST)
        rules: Any = dict(EMPTY_RULES)
        try:
            if kind == SegmentKind.DYNAMIC:
                rules = _rules_from(request.POST)
            if form.is_valid():
                data: dict[str, Any] = {
                    "name": form.cleaned_data["name"],
                    "description": form.cleaned_data["description"],
                }
                if segment is None:
                    data["kind"] = kind
                if kind == SegmentKind.DYNAMIC:
                    data["rules"] = rules
                saved = services.segment_save(data=data, actor=_staff(request), segment=segment)
                messages.success(request, _("The segment was saved."))
                return redirect("console:segment_detail", segment_id=saved.pk)
        except ValidationError as exc:
            notes = _errors(exc)
        if not isinstance(rules, dict):
            rules = dict(EMPTY_RULES)
    else:
        form = SegmentForm(
            initial={"name": segment.name, "description": segment.description} if segment else {}
        )
        rules = segment.rules if segment and segment.rules else dict(EMPTY_RULES)
    context = {"form": form, "kind": kind, "segment": segment, "notes": notes}
    if kind == SegmentKind.DYNAMIC:
        context.update(_builder_context(rules, segment, notes))
    return render(request, "console/segments/edit.html", context)


@staff_required("segments.add_segment")
def segment_new(request: HttpRequest) -> HttpResponse:
    kind = request.GET.get("kind", SegmentKind.DYNAMIC)
    if kind not in SegmentKind.values:
        kind = SegmentKind.DYNAMIC
    return _edit(request, None, kind)


@staff_required("segments.change_segment")
def segment_edit(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(segment_id)
    return _edit(request, segment, segment.kind)


@require_POST
@staff_required("segments.view_segment")
def segment_builder(request: HttpRequest) -> HttpResponse:
    """HTMX: the builder after adding or removing a condition or changing all/any, with the
    live count and sample members of the rules as they now stand (nothing is saved)."""
    segment_id = request.POST.get("segment_id", "")
    segment = _segment(int(segment_id)) if segment_id.isdigit() else None
    notes: list[str] = []
    try:
        rules = _rules_from(request.POST)
    except ValidationError as exc:
        return _htmx_vary(
            render(request, "console/segments/_preview.html", {"preview": {"errors": _errors(exc)}})
        )
    if not isinstance(rules, dict):
        rules = dict(EMPTY_RULES)
    conditions = list(rules.get("conditions") or [])
    action = request.POST.get("action", "")
    if action == "add":
        ctx = selectors.rule_context(self_id=segment.pk if segment else None)
        condition = condition_from_inputs(request.POST, ctx)
        probe = {**EMPTY_RULES, "conditions": [condition]}
        try:
            rule_language.validate(probe, ctx)
        except ValidationError as exc:
            notes = [e.replace("conditions[0]", _("new condition")) for e in _errors(exc)]
        else:
            conditions.append(condition)
    elif action.startswith("remove:") and action[7:].isdigit():
        index = int(action[7:])
        if 0 <= index < len(conditions):
            conditions.pop(index)
    if request.POST.get("match") in ("all", "any"):
        rules["match"] = request.POST["match"]
    rules["conditions"] = conditions
    rules.setdefault("version", rule_language.VERSION)
    return _htmx_vary(
        render(request, "console/segments/_builder.html", _builder_context(rules, segment, notes))
    )


@require_POST
@staff_required("segments.view_segment")
def segment_preview(request: HttpRequest) -> HttpResponse:
    """HTMX: live count and sample members of the rules typed in the JSON box."""
    segment_id = request.POST.get("segment_id", "")
    try:
        rules = _rules_from(request.POST)
        preview = _preview(rules, int(segment_id) if segment_id.isdigit() else None)
    except ValidationError as exc:
        preview = {"count": None, "sample": [], "errors": _errors(exc)}
    return _htmx_vary(render(request, "console/segments/_preview.html", {"preview": preview}))


@staff_required("segments.view_segment")
def segment_field_inputs(request: HttpRequest) -> HttpResponse:
    """HTMX: the operator menu and value inputs of the field chosen in the builder."""
    ctx = selectors.rule_context()
    spec = rule_language.Compilation(ctx).field_spec(request.GET.get("new_field", ""))
    return _htmx_vary(
        render(request, "console/segments/_field_inputs.html", _field_inputs(spec, ctx))
    )


def size_chart(snapshots: list[SegmentSnapshot]) -> dict[str, Any]:
    figure = go.Figure(
        go.Scatter(
            x=[s.taken_at.isoformat() for s in snapshots],
            y=[s.size for s in snapshots],
            mode="lines+markers",
            line={"color": ACCENT},
            name=_("Members"),
            hovertemplate="%{x}<br>%{y:,}<extra></extra>",
        )
    )
    figure.update_layout(
        **_layout(height=300, yaxis={"title": _("Members"), "rangemode": "tozero"})
    )
    return _plain(figure)


@staff_required("segments.view_segment")
def segment_detail(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(segment_id)
    snapshots = selectors.segment_snapshots(segment=segment)
    ctx = selectors.rule_context(self_id=segment.pk)
    try:
        live = selectors.segment_customers(segment=segment)
        live_count: int | None = live.count()
        sample = list(live.order_by("-pk")[:SAMPLE_SIZE])
        problem = ""
    except ValidationError as exc:
        live_count, sample, problem = None, [], "; ".join(_errors(exc))
    conditions = segment.rules.get("conditions", []) if segment.rules else []
    return render(
        request,
        "console/segments/detail.html",
        {
            "segment": segment,
            "live_count": live_count,
            "sample": sample,
            "problem": problem,
            "conditions": [describe(c, ctx) for c in conditions],
            "match": (segment.rules or {}).get("match", "all"),
            "snapshots": snapshots[-10:][::-1],
            "figure": size_chart(snapshots) if snapshots else None,
            "members": _page(request, selectors.segment_members(segment=segment)),
            "upload_form": UploadForm() if segment.kind == SegmentKind.STATIC else None,
        },
    )


@require_POST
@staff_required("segments.change_segment")
def segment_refresh(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(segment_id)
    try:
        result = services.segment_refresh(segment=segment)
    except ValidationError as exc:
        for error in _errors(exc):
            messages.error(request, error)
    else:
        messages.success(
            request,
            _("Refreshed: %(size)s members (%(entered)s entered, %(left)s left).")
            % {"size": result.size, "entered": result.entered, "left": result.left},
        )
    return redirect("console:segment_detail", segment_id=segment.pk)


@require_POST
@staff_required("segments.change_segment")
def segment_upload(request: HttpRequest, segment_id: int) -> HttpResponse:
    segment = _segment(segment_id)
    form = UploadForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, _("Choose a CSV file."))
        return redirect("console:segment_detail", segment_id=segment.pk)
    raw = form.cleaned_data["file"].read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("cp932", errors="replace")  # Excel's Japanese CSV
    try:
        result = services.segment_upload_static(
            segment=segment,
            text=text,
            key=form.cleaned_data["key"],
            replace=form.cleaned_data["replace"],
            skip_unknown=form.cleaned_data["skip_unknown"],
            actor=_staff(request),
        )
    except ValidationError as exc:
        for error in _errors(exc)[:20]:
            messages.error(request, error)
    else:
        messages.success(
            request,
            _("List uploaded: %(matched)s customers matched (%(entered)s entered, %(left)s left).")
            % {"matched": result.matched, "entered": result.entered, "left": result.left},
        )
        for line in result.unknown[:20]:
            messages.warning(request, line)
    return redirect("console:segment_detail", segment_id=segment.pk)
