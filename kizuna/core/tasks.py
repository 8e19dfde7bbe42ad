from __future__ import annotations

import os
import socket

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from kizuna.core.services import worker_heartbeat_record


@db_periodic_task(crontab(minute="*"))
def worker_heartbeat() -> None:
    worker_heartbeat_record(worker=f"{socket.gethostname()}:{os.getpid()}")
