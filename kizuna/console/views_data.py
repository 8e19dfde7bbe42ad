"""Console pages for data in and out: imports (upload, mapping, dry-run preview, run),
suspected duplicates with merge, customer CSV export, and tracking sources."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from kizuna.console.views import _staff, staff_required
from kizuna.core.errors import NotFound
from kizuna.customers import selectors as customer_selectors
from kizuna.customers.merge import customer_merge, customer_unmerge, suspected_duplicates
from kizuna.dataio.exporters import customer_csv_lines, in_segment
from kizuna.dataio.importers import run_import
from kizuna.dataio.jobs import (
    import_job_errors_csv,
    import_job_percent,
    import_job_rows_done,
    import_job_start,
)
from kizuna.dataio.mapping import FIELDS
from kizuna.dataio.models import ImportJob
from kizuna.iam.masking import masked_search_q, masks_personal_data
from kizuna.tracking import selectors as tracking_selectors
from kizuna.tracking import services as tracking_services

MAX_UPLOAD = 512 * 1024 * 1024
KINDS = [
    ("customers", gettext_lazy("Customers")),
    ("orders", gettext_lazy("Orders")),
    ("products", gettext_lazy("Products")),
]
IMPORT_PERMS = {
    "customers": "customers.add_customer",
    "orders": "commerce.add_order",
    "products": "catalog.add_product",
}


class UploadForm(forms.Form):
    kind = forms.ChoiceField(label=gettext_lazy("What"), choices=KINDS)
    file = forms.FileField(label=gettext_lazy("CSV or JSON Lines file"))


class SourceForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("Name"), max_length=100)


def _upload_dir() -> Path:
    path = Path(settings.DATA_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _upload_path(token: str) -> Path:
    if not token.isalnum():
        raise Http404
    path = _upload_dir() / f"{token}.upload"
    if not path.is_file():
        raise Http404
    return path


@staff_required("customers.view_customer")
def data_home(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        kind = form.cleaned_data["kind"]
        if not request.user.has_perm(IMPORT_PERMS[kind]):
            messages.error(request, _("Your role does not allow importing these."))
            return redirect("console:data_home")
        upload = form.cleaned_data["file"]
        if upload.size > MAX_UPLOAD:
            form.add_error("file", _("The file is larger than 512 MB."))
        else:
            token = secrets.token_hex(12)
            with open(_upload_dir() / f"{token}.upload", "wb") as out:
                for chunk in upload.chunks():
                    out.write(chunk)
            return redirect("console:data_preview", kind=kind, token=token)
    return render(request, "console/data/home.html", {"form": form})


def _mapping_from(request: HttpRequest, kind: str) -> dict[str, str]:
    return {
        key.removeprefix("map:"): str(value)
        for key, value in request.POST.items()
        if key.startswith("map:") and value in FIELDS[kind]
    }


@staff_required("customers.view_customer")
def data_preview(request: HttpRequest, kind: str, token: str) -> HttpResponse:
    if kind not in FIELDS:
        raise Http404
    if not request.user.has_perm(IMPORT_PERMS[kind]):
        raise Http404
    path = _upload_path(token)
    mapping = _mapping_from(request, kind) if request.method == "POST" else None
    skip = request.POST.get("skip_bad_rows") == "on"
    if request.method == "POST" and request.POST.get("action") == "run":
        # The real run happens in the worker; its page shows the progress live.
        job = import_job_start(
            kind=kind,
            path=path,
            file_name=request.POST.get("file_name", "")[:255] or path.name,
            mapping=mapping,
            skip_bad_rows=skip,
            actor=_staff(request),
        )
        return redirect("console:data_job", job_id=job.pk)
    report = run_import(kind, path, mapping=mapping, dry_run=True, skip_bad_rows=skip)
    columns = list(report.mapping) + report.unmapped
    return render(
        request,
        "console/data/preview.html",
        {
            "kind": kind,
            "token": token,
            "report": report,
            "columns": [(c, report.mapping.get(c, "")) for c in columns],
            "fields": FIELDS[kind],
            "preview_fields": ["row", *dict.fromkeys(report.mapping.values())],
            "skip": skip,
            "errors": report.errors[:200],
        },
    )


def _job(request: HttpRequest, job_id: int) -> ImportJob:
    job = ImportJob.objects.filter(pk=job_id).first()
    if job is None or not request.user.has_perm(IMPORT_PERMS.get(job.kind, "-")):
        raise Http404
    return job


def _job_context(job: ImportJob) -> dict[str, Any]:
    return {
        "job": job,
        "rows_done": import_job_rows_done(job),
        "percent": import_job_percent(job),
        "finished": job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED),
        "errors": job.errors[:200],
    }


@staff_required("customers.view_customer")
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    return render(request, "console/data/job.html", _job_context(_job(request, job_id)))


@staff_required("customers.view_customer")
def import_job_progress(request: HttpRequest, job_id: int) -> HttpResponse:
    """The progress panel alone, polled by HTMX every second until the job finishes."""
    return render(request, "console/data/_job_progress.html", _job_context(_job(request, job_id)))


@staff_required("customers.view_customer")
def import_job_errors(request: HttpRequest, job_id: int) -> Any:  # a StreamingHttpResponse
    job = _job(request, job_id)
    response = StreamingHttpResponse(
        import_job_errors_csv(job), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="import-{job.pk}-errors.csv"'
    return response


@staff_required("customers.view_customermerge")
def duplicates(request: HttpRequest) -> HttpResponse:
    groups = suspected_duplicates()
    ids = {cid for g in groups for cid in g.customer_ids}
    customers = {c.pk: c for c in customer_selectors.customer_list().filter(pk__in=ids)}
    rows = [(g, [customers[c] for c in g.customer_ids if c in customers]) for g in groups]
    return render(
        request,
        "console/data/duplicates.html",
        {"rows": rows, "merges": customer_selectors.merge_list()},
    )


def _unmerge(request: HttpRequest) -> HttpResponse:
    try:
        record = customer_selectors.merge_get(merge_id=int(request.POST["undo"]))
        customer_unmerge(merge=record, actor=_staff(request), reason="console")
    except (KeyError, ValueError, NotFound) as exc:
        raise Http404 from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("console:data_duplicates")
    messages.success(
        request,
        _("Merge undone: #%(m)d is separate from #%(s)d again.")
        % {"m": record.merged_id, "s": record.survivor_id},
    )
    return redirect("console:data_duplicates")


@require_POST
@staff_required("customers.add_customermerge")
def merge(request: HttpRequest) -> HttpResponse:
    """Merge two customers, or (with `undo`) reverse a recorded merge."""
    if "undo" in request.POST:
        return _unmerge(request)
    try:
        survivor = customer_selectors.customer_get(customer_id=int(request.POST["survivor"]))
        merged = customer_selectors.customer_get(customer_id=int(request.POST["merged"]))
        customer_merge(survivor=survivor, merged=merged, actor=_staff(request), reason="console")
    except (KeyError, ValueError, NotFound) as exc:
        raise Http404 from exc
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("console:data_duplicates")
    messages.success(request, _("Merged #%(m)d into #%(s)d.") % {"m": merged.pk, "s": survivor.pk})
    return redirect("console:data_duplicates")


@staff_required("customers.view_customer")
def customers_csv(request: HttpRequest) -> Any:  # a StreamingHttpResponse
    search, prefecture = request.GET.get("q", "")[:200], request.GET.get("prefecture", "")[:5]
    if search and masks_personal_data(request.user):  # masked roles: id and external id only
        qs = customer_selectors.customer_list(prefecture=prefecture)
        qs = qs.filter(masked_search_q(search)).distinct()
    else:
        qs = customer_selectors.customer_list(search=search, prefecture=prefecture)
    segment_id = request.GET.get("segment", "")
    filename = "customers.csv"
    if segment_id:
        try:
            qs = in_segment(qs, int(segment_id))
        except (ValueError, NotFound) as exc:
            raise Http404(_("No such segment.")) from exc
        filename = f"segment-{int(segment_id)}-customers.csv"
    lines = customer_csv_lines(qs, masked=masks_personal_data(request.user))
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


@staff_required("tracking.view_source")
def sources(request: HttpRequest) -> HttpResponse:
    form = SourceForm(request.POST or None)
    issued = None
    if request.method == "POST":
        if not request.user.has_perm("tracking.add_source"):
            raise Http404
        if form.is_valid():
            try:
                issued = tracking_services.source_create(
                    name=form.cleaned_data["name"], created_by=_staff(request)
                )
                form = SourceForm()
            except ValidationError as exc:
                for field, errors in exc.message_dict.items():
                    form.add_error("name" if field == "slug" else field, errors)
    return render(
        request,
        "console/data/sources.html",
        {
            "form": form,
            "issued": issued,
            "sources": tracking_selectors.source_list(),
            "inbox": tracking_selectors.inbox_stats(),
        },
    )
