"""The worker imports every app's tasks before its first task: the analytics tasks do not
load the models' fitting (scipy.optimize, scipy.special: about half a second) until a
scoring run is executed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = """
import sys, django
django.setup()
from django.utils.module_loading import autodiscover_modules
autodiscover_modules("tasks")  # what the worker (Huey's consumer) does at start
print(sorted(m for m in ("scipy.optimize", "scipy.special") if m in sys.modules))
from kizuna.analytics import services  # a scoring run loads them
print(sorted(m for m in ("scipy.optimize", "scipy.special") if m in sys.modules))
"""


def test_worker_start_leaves_the_fitting_unloaded(tmp_path: Path) -> None:
    env = dict(
        os.environ, KIZUNA_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="kizuna.settings.base"
    )
    done = subprocess.run(
        [sys.executable, "-c", CHECK], env=env, capture_output=True, text=True, check=True
    )
    at_start, after_services = done.stdout.split("\n")[:2]
    assert at_start == "[]"
    assert after_services == "['scipy.optimize', 'scipy.special']"
