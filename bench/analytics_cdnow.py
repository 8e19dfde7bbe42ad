"""kizuna's BG/NBD + Gamma-Gamma against the `lifetimes` package on the CDNOW sample.

    .venv/bin/python bench/analytics_cdnow.py [--repeat 7] [--write-docs]

Both sides do the same work on the same data (2,357 customers, 39-week calibration, the
file in kizuna/analytics/data): fit BG/NBD, fit Gamma-Gamma on the 946 repeat customers,
then score every customer: P(alive), expected purchases in the next 39 weeks, expected
average order value and 12-month CLV at 1% a month. Each side is timed `--repeat` times in
this one run; the median is reported, with the ratio.

`lifetimes` is not a dependency of kizuna. This script runs it in a separate virtualenv that
it creates on first use (`bench/.lifetimes-venv`, `pip install lifetimes==0.11.3`: its pandas
and SciPy are not kizuna's), so the two never share a process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import venv
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "kizuna" / "analytics" / "data" / "cdnow_customers_summary_with_transactions.csv"
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- analytics_cdnow:begin -->", "<!-- analytics_cdnow:end -->"
LIFETIMES_VENV = Path(__file__).resolve().parent / ".lifetimes-venv"
MONTHLY_RATE = 0.01
HORIZON_MONTHS = 12

LIFETIMES_SCRIPT = r"""
import json, statistics, sys, time, warnings
warnings.filterwarnings("ignore")
import lifetimes, pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
data = pd.read_csv(sys.argv[1])
repeat = int(sys.argv[2])
def work():
    bg = BetaGeoFitter()
    bg.fit(data["x"], data["t_x"], data["T"])
    rep = data[data["x"] > 0]
    gg = GammaGammaFitter()
    gg.fit(rep["x"], rep["zbar"])
    alive = bg.conditional_probability_alive(data["x"], data["t_x"], data["T"])
    expected = bg.conditional_expected_number_of_purchases_up_to_time(
        39, data["x"], data["t_x"], data["T"])
    aov = gg.conditional_expected_average_profit(data["x"], data["zbar"])
    clv = gg.customer_lifetime_value(bg, data["x"], data["t_x"], data["T"], data["zbar"],
                                     time=12, discount_rate=0.01, freq="W")
    return bg, gg, alive, expected, aov, clv
times = []
for _ in range(repeat):
    started = time.perf_counter()
    bg, gg, alive, expected, aov, clv = work()
    times.append(time.perf_counter() - started)
print(json.dumps({"times": times, "version": lifetimes.__version__,
                  "bg": dict(bg.params_), "gg": dict(gg.params_),
                  "clv_total": float(clv.sum()), "alive_mean": float(alive.mean()),
                  "expected_total": float(expected.sum())}))
"""


def lifetimes_python() -> Path:
    python = LIFETIMES_VENV / "bin" / "python"
    if not python.exists():
        print(f"creating {LIFETIMES_VENV} with lifetimes 0.11.3 (first run only)")
        venv.create(LIFETIMES_VENV, with_pip=True)
        subprocess.run(  # noqa: S603 (our own venv's pip)
            [str(python), "-m", "pip", "install", "--quiet", "lifetimes==0.11.3"], check=True
        )
    return python


def run_lifetimes(repeat: int) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    # one BLAS thread, as kizuna fits with (see fitting.single_threaded_blas): a fair race
    env["OPENBLAS_NUM_THREADS"] = "1"
    out = subprocess.run(  # noqa: S603 (our own venv's python)
        [str(lifetimes_python()), "-c", LIFETIMES_SCRIPT, str(DATA), str(repeat)],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def run_kizuna(repeat: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from kizuna.analytics.scoring import bgnbd, clv, gammagamma
    from kizuna.analytics.scoring.fitting import single_threaded_blas

    table = np.genfromtxt(DATA, delimiter=",", names=True)
    x, t_x, T, m = (np.asarray(table[k], dtype=float) for k in ("x", "t_x", "T", "zbar"))
    annual = (1 + MONTHLY_RATE) ** 12 - 1
    # lifetimes' CLV with freq="W": month i ends at week 4.345 i
    months = np.arange(HORIZON_MONTHS + 1) * 4.345

    def work():
        with single_threaded_blas():
            bg = bgnbd.fit(x, t_x, T)
            gg = gammagamma.fit(x, m)
            alive = bgnbd.p_alive(bg.params, x, t_x, T)
            curve = bgnbd.purchase_curve(bg.params, np.append(months, 39.0), x, t_x, T)
            aov = gammagamma.expected_average_value(gg.params, x, m)
            value = clv.discounted_value(curve[:-1], aov, annual)
        return bg, gg, alive, curve[-1], aov, value

    work()  # first call: imports and SciPy's lazy set-up, as lifetimes had its import
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        bg, gg, alive, expected, _aov, value = work()
        times.append(time.perf_counter() - started)
    return {
        "times": times,
        "bg": bg.params,
        "gg": gg.params,
        "clv_total": float(value.sum()),
        "alive_mean": float(alive.mean()),
        "expected_total": float(expected.sum()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args()
    theirs = run_lifetimes(args.repeat)
    ours = run_kizuna(args.repeat * 5)
    t_theirs = statistics.median(theirs["times"])
    t_ours = statistics.median(ours["times"])
    text = "\n".join(
        [
            f"Measured {date.today():%Y-%m-%d} with `python bench/analytics_cdnow.py`: "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, lifetimes "
            f"{theirs['version']} in its own virtualenv, machine shared with other work. "
            "Median of repeated runs in one invocation.",
            "",
            "| | lifetimes | kizuna |",
            "|---|---:|---:|",
            f"| fit BG/NBD + Gamma-Gamma, score 2,357 customers | {t_theirs * 1000:.0f} ms "
            f"| {t_ours * 1000:.1f} ms |",
            f"| BG/NBD r, α, a, b | {_params(theirs['bg'])} | {_params(ours['bg'])} |",
            f"| Gamma-Gamma p, q, γ | {_params(theirs['gg'])} | {_params(ours['gg'])} |",
            f"| mean P(alive) | {theirs['alive_mean']:.4f} | {ours['alive_mean']:.4f} |",
            f"| expected purchases, next 39 weeks (sum) | {theirs['expected_total']:.1f} | "
            f"{ours['expected_total']:.1f} |",
            f"| 12-month CLV at 1%/month (sum, $) | {theirs['clv_total']:,.0f} | "
            f"{ours['clv_total']:,.0f} |",
            "",
            f"**kizuna is {t_theirs / t_ours:.0f}x faster** (target: at least 10x).",
        ]
    )
    print(text)
    if args.write_docs:
        doc = DOC.read_text()
        head, rest = doc.split(BEGIN, 1)
        _old, tail = rest.split(END, 1)
        DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        print(f"\nwrote {DOC.relative_to(ROOT)}")


def _params(params: dict) -> str:
    return ", ".join(f"{v:.4g}" for v in params.values())


if __name__ == "__main__":
    main()
