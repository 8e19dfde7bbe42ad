"""Free-text analysis cost: CPU per answer of kizuna.core.text.tokenize (SudachiPy for
Japanese, regex + stemming for English) and of kizuna.surveys.sentiment.analyze, on
generated survey comments (the demo's ja/en phrases combined into 1-4 sentence answers),
plus the one-off cost of loading the Japanese dictionary.

    flock /tmp/kizuna-bench.lock .venv/bin/python bench/text_analysis.py --answers 20000

Prints CPU seconds (time.process_time) so figures mean something on a loaded machine.
No database: this is the per-answer work `response_submit` adds and that keyword counts
avoid repeating (terms are stored with each answer)."""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "kizuna.settings.base")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answers", type=int, default=20000)
    args = parser.parse_args()
    import django

    django.setup()
    from kizuna.core import text
    from kizuna.demo.surveys import COMMENTS
    from kizuna.surveys import sentiment

    rng = random.Random(1)
    corpus = {"ja": [], "en": []}
    for lang in ("ja", "en"):
        phrases = [p for by_cat in COMMENTS.values() for p in by_cat[lang]]
        sep = "。" if lang == "ja" else ". "
        corpus[lang] = [
            sep.join(rng.choice(phrases) for _ in range(rng.randint(1, 4)))
            for _ in range(args.answers // 2)
        ]
    started = time.process_time()
    text.tokenize("辞書を読み込む")
    load_cpu = time.process_time() - started
    print(f"load: Japanese dictionary + first analysis {load_cpu * 1000:.0f} ms CPU")
    print(f"uptime: {os.getloadavg()}")
    for lang, answers in corpus.items():
        chars = sum(len(a) for a in answers)
        t0 = time.process_time()
        terms = sum(len(text.tokenize(a, lang)) for a in answers)
        t1 = time.process_time()
        hits = sum(len(sentiment.analyze(a, lang).hits) for a in answers)
        t2 = time.process_time()
        n = len(answers)
        print(
            f"{lang}: {n} answers, {chars / n:.0f} chars each, {terms / n:.1f} terms each, "
            f"tokenize {1e6 * (t1 - t0) / n:.0f} us CPU/answer ({chars / (t1 - t0):,.0f} chars/s), "
            f"sentiment {1e6 * (t2 - t1) / n:.0f} us CPU/answer ({hits / n:.1f} lexicon hits)"
        )
    print(f"uptime: {os.getloadavg()}")


if __name__ == "__main__":
    main()
