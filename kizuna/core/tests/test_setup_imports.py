"""`django.setup()` (every CLI command, web and worker process) does not load NumPy, SciPy,
Plotly or the console's views: the apps' models name RFM segments and recommendation kinds
from modules of their own, the FAQ index loads rank_bm25 when it is built, and the customer
360 page's panels are registered when it is first rendered. About 0.3 s of CPU per process
start. Nor do the task modules a worker imports at start (about 0.2 s more)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

CHECK = """
import json, sys, django
django.setup()
heavy = ("numpy", "scipy", "scipy.sparse", "rank_bm25", "plotly", "kizuna.console.views_segments")
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
from django.utils.module_loading import autodiscover_modules
autodiscover_modules("tasks")  # what a worker imports at start
print(json.dumps(sorted(m for m in heavy if m in sys.modules)))
from kizuna.analytics.scoring import rfm
from kizuna.recommendations.engine import models
from kizuna.analytics.models import Segment
from kizuna.recommendations.models import Kind
print(json.dumps([
    "numpy" in sys.modules,
    [s.value for s in Segment] == list(rfm.SEGMENTS),
    sorted(k.value for k in Kind) == sorted(models.KINDS),
]))
"""


def test_set_up_leaves_numpy_and_scipy_unloaded(tmp_path: Path) -> None:
    env = dict(
        os.environ, KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base"
    )
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    )
    at_setup, with_tasks, after = (json.loads(line) for line in done.stdout.splitlines()[:3])
    assert at_setup == []
    assert with_tasks == []  # the worker's start too (the training imports them when it runs)
    # The engine modules still load them, and name the same segments and kinds.
    assert after == [True, True, True]
