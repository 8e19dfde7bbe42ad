"""Console pages of surveys: the list, the builder (questions as rows; conditions and trait
mapping per row), the results page (NPS with its interval, promoters/passives/detractors,
monthly trend, answers per question, keyword and phrase frequencies by NPS category with a
word-frequency chart, sentiment, recent comments, breakdowns by segment, loyalty tier, RFM
segment and product), the CSV export, and the customer-360 panel of a customer's answers.

The breakdowns are computed here, in the console (a face may read every app): the customer
ids of each segment / tier / RFM segment / product's buyers among the respondents go to
`kizuna.surveys.selectors.nps_by_group`, so surveys never imports those higher apps."""

from __future__ import annotations

import csv
from collections import defaultdict
from typing import Any

import plotly.graph_objects as go
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console.analytics_charts import ACCENT, MUTED, _layout, _plain
from kizuna.console.panels import CustomerPanel, register_customer_panel
from kizuna.console.views import _page, _staff, staff_required
from kizuna.customers.models import Customer
from kizuna.surveys import links, selectors, services
from kizuna.surveys.models import QuestionKind, Response, Survey, SurveyStatus

BLANK_ROWS = 3
BREAKDOWN_LIMIT = 12
CATEGORY_LABELS = {
    "promoter": gettext_lazy("Promoters (9-10)"),
    "passive": gettext_lazy("Passives (7-8)"),
    "detractor": gettext_lazy("Detractors (0-6)"),
}
CATEGORY_COLOURS = {"promoter": "#047857", "passive": MUTED, "detractor": "#b91c1c"}
SHOW_IF_OPS = [
    ("", gettext_lazy("always shown")),
    ("eq", gettext_lazy("is")),
    ("ne", gettext_lazy("is not")),
    ("lte", gettext_lazy("at most")),
    ("gte", gettext_lazy("at least")),
    ("in", gettext_lazy("is one of")),
]


def _survey(survey_id: int) -> Survey:
    survey = selectors.survey_get(survey_id=survey_id)
    if survey is None:
        raise Http404
    return survey


# --- list -----------------------------------------------------------------------------------


@staff_required("surveys.view_survey")
def survey_list(request: HttpRequest) -> HttpResponse:
    page = _page(request, selectors.survey_list())
    rows = [(s, selectors.nps_summary(survey=s)) for s in page]
    return render(request, "console/surveys/list.html", {"page": page, "rows": rows})


# --- builder --------------------------------------------------------------------------------


def _choices_text(choices: list[dict[str, str]]) -> str:
    return "\n".join(
        " | ".join(x for x in (c["value"], c["label"], c.get("label_en", "")) if x) for c in choices
    )


def _parse_choices(text: str) -> list[dict[str, str]]:
    out = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split("|")]
        if not parts or not parts[0]:
            continue
        value = parts[0]
        label = parts[1] if len(parts) > 1 and parts[1] else value
        out.append({"value": value, "label": label, "label_en": parts[2] if len(parts) > 2 else ""})
    return out


def _parse_value(raw: str, op: str) -> Any:
    def one(v: str) -> Any:
        v = v.strip()
        return int(v) if v.lstrip("-").isdigit() else v

    if op == "in":
        return [one(v) for v in raw.split(",") if v.strip()]
    return one(raw)


def _rows_from_post(post: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows as shown again, question definitions for the service); blank rows are skipped.
    Each row remembers the index of its definition so the service's errors find it."""
    rows: list[dict[str, Any]] = []
    questions: list[dict[str, Any]] = []
    count = min(int(post.get("rows", "0") or 0), services.MAX_QUESTIONS + BLANK_ROWS)
    for i in range(count):
        p = f"q-{i}-"
        row = {
            "key": post.get(p + "key", "").strip(),
            "kind": post.get(p + "kind", ""),
            "text": post.get(p + "text", "").strip(),
            "text_en": post.get(p + "text_en", "").strip(),
            "required": bool(post.get(p + "required")),
            "choices_text": post.get(p + "choices", ""),
            "scale_max": post.get(p + "scale_max", "5").strip() or "5",
            "show_if_question": post.get(p + "show_if_question", "").strip(),
            "show_if_op": post.get(p + "show_if_op", ""),
            "show_if_value": post.get(p + "show_if_value", "").strip(),
            "trait_key": post.get(p + "trait_key", "").strip(),
            "index": None,
        }
        if not row["text"] and not row["key"]:
            rows.append(row)
            continue
        question: dict[str, Any] = {
            "key": row["key"],
            "kind": row["kind"],
            "text": row["text"],
            "text_en": row["text_en"],
            "required": row["required"],
            "trait_key": row["trait_key"],
        }
        if row["kind"] in (QuestionKind.SINGLE, QuestionKind.MULTIPLE):
            question["choices"] = _parse_choices(row["choices_text"])
        if row["kind"] == QuestionKind.RATING:
            scale = row["scale_max"]
            question["scale_max"] = int(scale) if scale.isdigit() else scale
        if row["show_if_op"] and row["show_if_question"]:
            question["show_if"] = {
                "question": row["show_if_question"],
                "op": row["show_if_op"],
                "value": _parse_value(row["show_if_value"], row["show_if_op"]),
            }
        row["index"] = len(questions)
        questions.append(question)
        rows.append(row)
    return rows, questions


def _rows_from_survey(survey: Survey | None) -> list[dict[str, Any]]:
    rows = []
    for q in selectors.questions_of(survey) if survey else []:
        value = q.show_if.get("value", "") if q.show_if else ""
        rows.append(
            {
                "key": q.key,
                "kind": q.kind,
                "text": q.text,
                "text_en": q.text_en,
                "required": q.required,
                "choices_text": _choices_text(q.choices),
                "scale_max": str(q.scale_max),
                "show_if_question": q.show_if.get("question", "") if q.show_if else "",
                "show_if_op": q.show_if.get("op", "") if q.show_if else "",
                "show_if_value": ", ".join(map(str, value))
                if isinstance(value, list)
                else str(value),
                "trait_key": q.trait_key,
                "index": None,
            }
        )
    return rows


def _blank_row() -> dict[str, Any]:
    return {
        "key": "",
        "kind": QuestionKind.TEXT,
        "text": "",
        "text_en": "",
        "required": False,
        "choices_text": "",
        "scale_max": "5",
        "show_if_question": "",
        "show_if_op": "",
        "show_if_value": "",
        "trait_key": "",
        "index": None,
    }


def _builder(request: HttpRequest, survey: Survey | None) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        fields = {
            f: request.POST.get(f, "").strip()
            for f in ("slug", "title", "title_en", "description", "description_en")
        }
        rows, questions = _rows_from_post(request.POST)
        data: dict[str, Any] = {
            **fields,
            "allow_anonymous": bool(request.POST.get("allow_anonymous")),
            "questions": questions,
        }
        try:
            if survey is None:
                survey = services.survey_create(data=data, actor=_staff(request))
                messages.success(request, _("Survey created."))
            else:
                services.survey_update(survey=survey, data=data, actor=_staff(request))
                messages.success(request, _("Survey saved."))
            return redirect("console:survey_detail", survey.pk)
        except ValidationError as exc:
            errors = exc.message_dict
        values = {**fields, "allow_anonymous": data["allow_anonymous"]}
    else:
        rows = _rows_from_survey(survey)
        values = {
            "slug": survey.slug if survey else "",
            "title": survey.title if survey else "",
            "title_en": survey.title_en if survey else "",
            "description": survey.description if survey else "",
            "description_en": survey.description_en if survey else "",
            "allow_anonymous": survey.allow_anonymous if survey else False,
        }
        if survey is None:
            rows = [
                {
                    **_blank_row(),
                    "key": "nps",
                    "kind": QuestionKind.NPS,
                    "required": True,
                    "text": _("How likely are you to recommend us to a friend?"),
                },
                {
                    **_blank_row(),
                    "key": "why",
                    "kind": QuestionKind.TEXT,
                    "text": _("What is the main reason for your score?"),
                },
            ]
    rows = rows + [_blank_row() for _ in range(BLANK_ROWS)]
    for n, row in enumerate(rows):
        row["n"] = n
        prefix = f"questions.{row['index']}" if row["index"] is not None else None
        row["errors"] = {
            k.split(".", 2)[2] if k.count(".") >= 2 else "row": v
            for k, v in errors.items()
            if prefix and (k == prefix or k.startswith(prefix + "."))
        }
    general = {
        k: v for k, v in errors.items() if not k.startswith("questions.") and k != "questions"
    }
    return render(
        request,
        "console/surveys/builder.html",
        {
            "survey": survey,
            "values": values,
            "rows": rows,
            "row_count": len(rows),
            "kinds": QuestionKind.choices,
            "ops": SHOW_IF_OPS,
            "errors": general,
            "question_errors": errors.get("questions", []),
            "answered": bool(survey and Response.objects.filter(survey=survey).exists()),
        },
        status=400 if errors else 200,
    )


@staff_required("surveys.add_survey")
def survey_new(request: HttpRequest) -> HttpResponse:
    return _builder(request, None)


@staff_required("surveys.change_survey")
def survey_edit(request: HttpRequest, survey_id: int) -> HttpResponse:
    return _builder(request, _survey(survey_id))


@require_POST
@staff_required("surveys.change_survey")
def survey_status(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = _survey(survey_id)
    try:
        services.survey_set_status(
            survey=survey, status=request.POST.get("status", ""), actor=_staff(request)
        )
        messages.success(request, _("Survey status changed."))
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("console:survey_detail", survey.pk)


# --- results --------------------------------------------------------------------------------


def trend_chart(trend: list[tuple[str, selectors.NpsSummary]]) -> dict[str, Any]:
    months = [m for m, _s in trend]
    scores = [s.score for _m, s in trend]
    figure = go.Figure(
        [
            go.Scatter(
                x=months + months[::-1],
                y=[s.ci_high if s.ci_high is not None else s.score for _m, s in trend]
                + [s.ci_low if s.ci_low is not None else s.score for _m, s in trend][::-1],
                fill="toself",
                fillcolor="rgba(138,59,18,0.15)",
                line={"width": 0},
                hoverinfo="skip",
                # xgettext:no-python-format
                name=_("95% interval"),
            ),
            go.Scatter(
                x=months,
                y=scores,
                mode="lines+markers",
                line={"color": ACCENT},
                name=_("NPS"),
                customdata=[s.n for _m, s in trend],
                hovertemplate="%{x}: NPS %{y:.1f} (n=%{customdata})<extra></extra>",
            ),
        ],
        layout=_layout(yaxis={"range": [-100, 100], "title": {"text": _("NPS")}}, height=300),
    )
    return _plain(figure)


def category_chart(summary: selectors.NpsSummary) -> dict[str, Any]:
    figure = go.Figure(
        [
            go.Bar(
                y=[""],
                x=[summary.share(c)],
                orientation="h",
                name=str(CATEGORY_LABELS[c]),
                marker={"color": CATEGORY_COLOURS[c]},
                hovertemplate=f"{CATEGORY_LABELS[c]}: %{{x:.1f}}%<extra></extra>",
            )
            for c in selectors.CATEGORIES
        ],
        layout=_layout(barmode="stack", height=160, xaxis={"range": [0, 100], "ticksuffix": "%"}),
    )
    return _plain(figure)


def distribution_chart(rows: list[tuple[str, int]], labels: dict[str, str]) -> dict[str, Any]:
    figure = go.Figure(
        go.Bar(
            x=[labels.get(v, v) for v, _n in rows],
            y=[n for _v, n in rows],
            marker={"color": ACCENT},
            hovertemplate="%{x}: %{y:,}<extra></extra>",
        ),
        layout=_layout(height=240, xaxis={"type": "category"}),
    )
    return _plain(figure)


def word_chart(terms_by_category: dict[str, list[selectors.TermCount]]) -> dict[str, Any]:
    """Word frequency: horizontal bars of the top terms, one trace per NPS category."""
    traces = []
    for category, terms in terms_by_category.items():
        top = terms[:10][::-1]
        traces.append(
            go.Bar(
                y=[t.term for t in top],
                x=[t.answers for t in top],
                orientation="h",
                name=str(CATEGORY_LABELS[category]),
                marker={"color": CATEGORY_COLOURS[category]},
                hovertemplate="%{y}: %{x:,}<extra></extra>",
            )
        )
    figure = go.Figure(
        traces,
        layout=_layout(
            height=420,
            barmode="group",
            xaxis={"title": {"text": _("Answers mentioning it")}},
            yaxis={"automargin": True},
        ),
    )
    return _plain(figure)


def _breakdowns(survey: Survey) -> list[tuple[str, list[tuple[str, selectors.NpsSummary]]]]:
    """NPS per segment, loyalty tier, RFM segment and bought product of the respondents."""
    from kizuna.analytics.models import CustomerScore
    from kizuna.analytics.models import Segment as RfmSegment
    from kizuna.commerce.models import OrderLine
    from kizuna.loyalty.models import Account
    from kizuna.segments.models import SegmentMembership

    respondents = list(
        Response.objects.filter(
            survey=survey, customer__isnull=False, nps__isnull=False
        ).values_list("customer_id", flat=True)
    )
    if not respondents:
        return []
    out: list[tuple[str, list[tuple[str, selectors.NpsSummary]]]] = []
    groups: dict[str, list[int]] = defaultdict(list)
    for name, cid in SegmentMembership.objects.filter(customer_id__in=respondents).values_list(
        "segment__name", "customer_id"
    ):
        groups[name].append(cid)
    out.append((_("Segment"), selectors.nps_by_group(survey=survey, groups=groups)))
    groups = defaultdict(list)
    for name, cid in Account.objects.filter(customer_id__in=respondents).values_list(
        "tier__name", "customer_id"
    ):
        groups[name or _("No tier")].append(cid)
    out.append((_("Loyalty tier"), selectors.nps_by_group(survey=survey, groups=groups)))
    labels = dict(RfmSegment.choices)
    groups = defaultdict(list)
    for segment, cid in CustomerScore.objects.filter(customer_id__in=respondents).values_list(
        "segment", "customer_id"
    ):
        groups[str(labels.get(segment, segment))].append(cid)
    out.append((_("RFM segment"), selectors.nps_by_group(survey=survey, groups=groups)))
    groups = defaultdict(set)  # type: ignore[arg-type]
    for name, cid in (
        OrderLine.objects.filter(order__customer_id__in=respondents)
        .values_list("product__name", "order__customer_id")
        .distinct()
    ):
        groups[name or "?"].add(cid)  # type: ignore[attr-defined]
    out.append((_("Product bought"), selectors.nps_by_group(survey=survey, groups=groups)))
    return [(title, rows[:BREAKDOWN_LIMIT]) for title, rows in out if rows]


@staff_required("surveys.view_response")
def survey_detail(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = _survey(survey_id)
    language = translation.get_language() or "ja"
    summary = selectors.nps_summary(survey=survey)
    trend = selectors.nps_trend(survey=survey)
    keywords = selectors.keywords_by_category(survey=survey, top=15)
    phrases = selectors.keywords_by_category(survey=survey, top=10, phrases=True)
    questions = []
    for q in selectors.questions_of(survey):
        dist = selectors.question_distribution(q)
        labels = {c["value"]: q.choice_label(c["value"], language) for c in q.choices}
        questions.append(
            {
                "question": q,
                "text": q.text_for(language),
                "rows": [(labels.get(v, v), n) for v, n in dist],
                "figure": distribution_chart(dist, labels)
                if dist and any(n for _v, n in dist)
                else None,
            }
        )
    sentiment = selectors.sentiment_by_category(survey=survey)
    context = {
        "survey": survey,
        "summary": summary,
        "csat": selectors.csat_summary(survey=survey),
        "rate": selectors.response_rate(survey=survey),
        "trend": trend,
        "trend_figure": trend_chart(trend) if trend else None,
        "category_figure": category_chart(summary) if summary.n else None,
        "questions": questions,
        "keyword_rows": [
            (CATEGORY_LABELS[c], keywords[c], phrases[c]) for c in selectors.CATEGORIES
        ],
        "word_figure": word_chart(keywords) if any(keywords.values()) else None,
        "sentiment_rows": [
            (CATEGORY_LABELS.get(k, _("All answers")), v) for k, v in sentiment.items()
        ],
        "comments": [
            (a, services.nps_category(a.response.nps))
            for a in selectors.recent_comments(survey=survey, limit=15)
        ],
        "breakdowns": _breakdowns(survey),
        "public_url": links.public_url(survey) if survey.allow_anonymous else "",
        "template_snippet": '{{ surveys["' + survey.slug + '"] }}',
        "statuses": SurveyStatus.choices,
    }
    return render(request, "console/surveys/detail.html", context)


@staff_required("surveys.view_response")
def survey_export(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = _survey(survey_id)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="survey-{survey.slug}.csv"'
    response.write("\ufeff")  # Excel opens UTF-8 Japanese correctly with a BOM
    writer = csv.writer(response)
    for row in selectors.export_rows(survey=survey, language=translation.get_language() or "ja"):
        writer.writerow(row)
    return response


# --- customer 360 ---------------------------------------------------------------------------


def surveys_panel(request: HttpRequest, customer: Customer) -> dict[str, Any] | None:
    responses = selectors.customer_responses(customer_id=customer.pk, limit=10)
    if not responses:
        return None
    language = translation.get_language() or "ja"
    return {
        "responses": [
            {
                "response": r,
                "category": services.nps_category(r.nps),
                "answers": [
                    (a.question.text_for(language), selectors.answer_display(a, language))
                    for a in r.answers.all()
                ],
            }
            for r in responses
        ]
    }


def register_panels() -> None:
    register_customer_panel(
        CustomerPanel(
            key="surveys",
            template="console/surveys/_customer_panel.html",
            context=surveys_panel,
            permission="surveys.view_response",
            order=70,
        )
    )
