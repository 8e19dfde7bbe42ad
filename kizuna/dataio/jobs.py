"""Import jobs: an import started from the console runs in the worker, with its progress
visible while it runs and its outcome (counts, every row error) kept on the job row.

The import itself is one transaction (all-or-nothing per file unless skipping bad rows),
so the rows read so far cannot be written to the job row while it runs (on SQLite no other
connection may write meanwhile, and on PostgreSQL nobody would see it before the commit):
the live count goes through the cache, which every web process shares, and the row gets
the final figures.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kizuna.core.audit import acting_as
from kizuna.core.timeutil import now
from kizuna.dataio.importers import run_import
from kizuna.dataio.mapping import FIELDS
from kizuna.dataio.models import ImportJob

KEPT_ERRORS = 10_000
_PROGRESS_KEY = "dataio:import-job:{}:rows"


def _count_rows(path: Path) -> int:
    """Data rows, estimated by line breaks (a progress denominator, not a validation)."""
    lines = 0
    last = b"\n"
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            lines += block.count(b"\n")
            last = block[-1:]
    lines += last != b"\n"
    return max(lines - (0 if path.suffix.lower() in (".jsonl", ".ndjson") else 1), 0)


def import_job_start(
    *,
    kind: str,
    path: Path,
    file_name: str,
    mapping: dict[str, str] | None = None,
    skip_bad_rows: bool = False,
    actor: AbstractBaseUser | None = None,
) -> ImportJob:
    """Record an import job for an uploaded file and queue it for the worker (on commit)."""
    if kind not in FIELDS:
        raise ValidationError({"kind": [_("Unknown import kind.")]})
    if not path.is_file():
        raise ValidationError({"file": [_("The uploaded file is gone; upload it again.")]})
    with acting_as(actor):
        job = ImportJob.objects.create(
            kind=kind,
            file_name=file_name[:255],
            path=str(path),
            mapping=dict(mapping or {}),
            skip_bad_rows=skip_bad_rows,
            rows_total=_count_rows(path),
            created_by=actor if getattr(actor, "is_authenticated", False) else None,  # type: ignore[misc]
        )
    from kizuna.dataio.tasks import import_job_task

    transaction.on_commit(lambda: import_job_task(job.pk))
    return job


def import_job_run(*, job_id: int) -> ImportJob:
    """Run a queued job (the worker's side). A job already started is left alone, so a
    redelivered task does not import twice."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=now()
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        return job
    key = _PROGRESS_KEY.format(job.pk)
    done = [0]

    def progress(rows: int) -> None:
        done[0] += rows
        cache.set(key, done[0], 24 * 3600)

    path = Path(job.path)
    try:
        report = run_import(
            job.kind,
            path,
            mapping=job.mapping or None,
            skip_bad_rows=job.skip_bad_rows,
            progress=progress,
        )
    except Exception as exc:
        job.status = ImportJob.Status.FAILED
        job.errors = [{"row": 0, "field": "", "message": str(exc)[:500]}]
        job.errors_total = 1
    else:
        job.status = ImportJob.Status.DONE
        job.rows_done = report.rows
        job.created, job.updated, job.skipped = report.created, report.updated, report.skipped
        job.applied = report.applied
        job.errors = [
            {"row": e.row, "field": e.field, "message": e.message}
            for e in report.errors[:KEPT_ERRORS]
        ]
        job.errors_total = len(report.errors)
    job.finished_at = now()
    job.save()
    cache.delete(key)
    path.unlink(missing_ok=True)
    return job


def import_job_rows_done(job: ImportJob) -> int:
    """Rows read so far: live from the cache while running, else from the row."""
    if job.status == ImportJob.Status.RUNNING:
        return int(cache.get(_PROGRESS_KEY.format(job.pk)) or 0)
    return job.rows_done


def import_job_percent(job: ImportJob) -> int:
    if job.status in (ImportJob.Status.DONE, ImportJob.Status.FAILED):
        return 100
    if not job.rows_total:
        return 0
    return min(99, int(100 * import_job_rows_done(job) / job.rows_total))


def import_job_errors_csv(job: ImportJob) -> Iterator[str]:
    """The job's row errors as CSV lines (row, field, message), UTF-8 with a BOM for Excel."""
    yield "\ufeff"
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    rows: list[list[Any]] = [["row", "field", "message"]]
    rows += [[e["row"], e["field"], e["message"]] for e in job.errors]
    for row in rows:
        writer.writerow(row)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
