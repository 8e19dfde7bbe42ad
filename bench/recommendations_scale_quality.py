"""Recommendations (issue 10): holdout quality of the size-dependent settings at scale.

    nice -n 15 .venv/bin/python bench/recommendations_scale_quality.py --scale 0.5 \
        popularity: cooccurrence: als:iterations=12 als:iterations=6 bpr:bpr_iterations=5

The purchases of `recommendations_1m.py`'s generator (its --customers and --lines times
--scale; 10,000 products), in memory (no database); the time-based holdout of the last 8
weeks (engine/evaluation.py); each `kind:Params overrides` is trained on the data before
the cut-off and scored on 4,000 test customers (MAP@10, precision@10, recall@10), with its
wall and CPU seconds. Quality only: not a timed benchmark (run it niced).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from recommendations_1m import Synthetic  # noqa: E402

from kizuna.recommendations.engine import evaluation, training  # noqa: E402
from kizuna.recommendations.engine import matrix as mx  # noqa: E402
from kizuna.recommendations.engine import models as engine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--test", type=int, default=4000, help="test customers scored")
    parser.add_argument("specs", nargs="+", help="kind:field=value,field=value")
    args = parser.parse_args()
    s = Synthetic(int(1_000_000 * args.scale), 10_000, int(10_000_000 * args.scale))
    customers = s.order_customer[s.line_order] + 1
    interactions = mx.Interactions(
        customers=customers,
        products=s.line_product + 1,
        weights=s.line_quantity.astype(np.float32),
        times=s.order_placed[s.line_order],
        purchase=np.ones(len(customers), bool),
    )
    cutoff = int(time.time()) - 8 * 7 * 86400
    matrix, holdout = evaluation.split(
        interactions, cutoff, lambda rows: mx.build(rows, np.arange(1, 10_001))
    )
    rng = np.random.default_rng(0)
    pick = rng.choice(len(holdout.rows), min(args.test, len(holdout.rows)), replace=False)
    rows, truth = holdout.rows[pick], [holdout.truth[i] for i in pick]
    print(f"{matrix.shape}, {matrix.weights.nnz:,} pairs, {len(holdout.rows):,} test customers")
    for spec in args.specs:
        kind, _, fields = spec.partition(":")
        overrides = {}
        for item in filter(None, fields.split(",")):
            name, _, value = item.partition("=")
            overrides[name] = type(getattr(training.Params(), name))(value)
        params = replace(training.Params(), **overrides)
        wall, cpu = time.perf_counter(), time.process_time()
        model = engine.train(kind, matrix, params)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        m = evaluation.metrics(evaluation.recommend_rows(model, rows, 10), truth, 10, 10_000)
        print(
            f"{spec:32s} wall {wall:5.1f} s, CPU {cpu:5.1f} s; MAP@10 {m['map']:.4f}"
            f" P@10 {m['precision']:.4f} R@10 {m['recall']:.4f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
