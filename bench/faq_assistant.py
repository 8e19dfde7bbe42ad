"""FAQ assistant accuracy and latency on the labelled set kizuna/support/fixtures/faq_eval.json.

Loads the articles into a throwaway SQLite database through the support services, asks every
question through `kizuna.support.faq.search` (the code path the console, LINE and the contact
form use), and reports top-1 / top-3 accuracy (overall and per language), the automatic-answer
rate and its precision at several confidence thresholds, and latency (CPU and wall per query,
index build). Timed: run it under the bench lock:

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/faq_assistant.py
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "kizuna" / "support" / "fixtures" / "faq_eval.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the questions")
    parser.add_argument("--show-misses", action="store_true")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="kizuna-faq-")
    os.environ.update(KIZUNA_DATA_DIR=tmp, DJANGO_SETTINGS_MODULE="kizuna.settings.base")
    try:
        run(args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args: argparse.Namespace) -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from kizuna.support import faq, services

    data = json.loads(FIXTURE.read_text())
    for a in data["articles"]:
        services.faq_article_save(
            key=a["key"], locale=a["locale"], title=a["title"], body=a["body"], tags=a["tags"]
        )
    questions = data["questions"]

    cpu0, wall0 = time.process_time(), time.perf_counter()
    faq.articles_changed()
    for locale in ("ja", "en"):
        faq._index(locale)
    build_cpu, build_wall = time.process_time() - cpu0, time.perf_counter() - wall0

    results = []
    for q in questions:
        answer = faq.search(q["question"], locale=q["locale"], limit=3)
        keys = [h.key for h in answer.hits]
        results.append((q, keys, answer.confidence))

    cpu_per, wall_per = [], []
    for _ in range(args.repeat):
        for q in questions:
            c, w = time.process_time(), time.perf_counter()
            faq.search(q["question"], locale=q["locale"], limit=3)
            cpu_per.append(time.process_time() - c)
            wall_per.append(time.perf_counter() - w)

    def acc(rows: list, k: int) -> float:
        return sum(1 for q, keys, _c in rows if q["key"] in keys[:k]) / len(rows)

    lines = []
    by_locale = {lc: [r for r in results if r[0]["locale"] == lc] for lc in ("ja", "en")}
    lines.append(
        f"articles: {len(data['articles'])} ({len(data['articles']) // 2} keys x ja/en); "
        f"questions: {len(questions)} (ja {len(by_locale['ja'])}, en {len(by_locale['en'])})"
    )
    lines.append(f"top-1 accuracy: {acc(results, 1):.1%}   top-3 accuracy: {acc(results, 3):.1%}")
    for lc, rows in by_locale.items():
        lines.append(f"  {lc}: top-1 {acc(rows, 1):.1%}, top-3 {acc(rows, 3):.1%}")
    lines.append(
        "automatic answers by threshold (rate = share of questions answered, "
        "precision = share of those answered with the right article):"
    )
    for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
        answered = [(q, keys) for q, keys, c in results if keys and c >= threshold]
        right = sum(1 for q, keys in answered if keys[0] == q["key"])
        precision = right / len(answered) if answered else float("nan")
        lines.append(
            f"  >= {threshold:.1f}: rate {len(answered) / len(results):.1%}, "
            f"precision {precision:.1%} ({right}/{len(answered)})"
        )
    cpu_sorted, wall_sorted = sorted(cpu_per), sorted(wall_per)
    p95 = int(0.95 * (len(wall_sorted) - 1))
    lines.append(
        f"latency per question ({len(wall_per)} searches): CPU mean "
        f"{statistics.fmean(cpu_per) * 1000:.2f} ms, p95 {cpu_sorted[p95] * 1000:.2f} ms; "
        f"wall p50 {statistics.median(wall_per) * 1000:.2f} ms, "
        f"p95 {wall_sorted[p95] * 1000:.2f} ms"
    )
    lines.append(
        f"index build (both languages, 60 articles): CPU {build_cpu * 1000:.0f} ms, "
        f"wall {build_wall * 1000:.0f} ms"
    )
    one, five, fifteen = os.getloadavg()
    lines.append(f"load average: {one:.2f} {five:.2f} {fifteen:.2f}")
    print("\n".join(lines))
    if args.show_misses:
        print("\nmisses (top-1):")
        for q, keys, c in results:
            if not keys or keys[0] != q["key"]:
                print(
                    f"  [{q['locale']}] {q['question']} -> {keys[:3]} (want {q['key']}, c={c:.2f})"
                )


if __name__ == "__main__":
    main()
