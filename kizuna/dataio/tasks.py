"""Worker tasks of data in and out."""

from __future__ import annotations

from huey.contrib.djhuey import db_task

from kizuna.dataio.jobs import import_job_run


@db_task()
def import_job_task(job_id: int) -> int:
    return import_job_run(job_id=job_id).pk
