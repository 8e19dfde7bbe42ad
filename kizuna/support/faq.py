"""The FAQ assistant: BM25 retrieval over the published knowledge-base articles, and the
confidence that decides whether a customer gets an automatic answer.

Index. One BM25 (Okapi, `rank-bm25`, k1=1.5, b=0.75) index per language, over the tokens
of `kizuna.core.text.tokenize` (SudachiPy lemmas for Japanese, stemmed words for English) of
each article's title (counted twice: titles are the question an article answers), tags and
body. It is built in process on first use and kept until the articles change: every search
compares a cheap stamp (count and newest `updated_at` of the language's published articles)
with the one it was built from, so an edit made in another process is seen too; saves and
deletes in this process drop it at once.

Confidence. With BM25 scores s_1 >= s_2 >= ... over all N articles of the language,

    confidence = exp(s_1 / T) / sum_i exp(s_i / T)        (0 when s_1 <= 0)

the share of the top article in a softmax over the scores (temperature T,
KIZUNA_SUPPORT_FAQ_TEMPERATURE, default 1). It is high only when the top article scores well
*and* clearly above the rest: a weak match (all scores near 0) is spread over N articles, and
two articles scoring alike split it. An automatic answer is given when confidence >=
KIZUNA_SUPPORT_FAQ_THRESHOLD (default 0.6); otherwise a person answers.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Count, Max

from kizuna.core.text import detect_language, tokenize
from kizuna.support import conf
from kizuna.support.models import FaqArticle

if TYPE_CHECKING:  # rank_bm25 loads NumPy: imported when an index is built, not at set-up
    from rank_bm25 import BM25Okapi


@dataclass(frozen=True)
class Hit:
    article_id: int
    key: str
    locale: str
    title: str
    body: str
    score: float


@dataclass(frozen=True)
class Answer:
    query: str
    locale: str
    hits: list[Hit]
    confidence: float
    threshold: float

    @property
    def top(self) -> Hit | None:
        return self.hits[0] if self.hits else None

    @property
    def confident(self) -> bool:
        return bool(self.hits) and self.confidence >= self.threshold


@dataclass
class _Index:
    stamp: tuple[Any, ...]
    articles: list[dict[str, Any]]
    bm25: BM25Okapi | None


_lock = threading.Lock()
_indexes: dict[str, _Index] = {}


def articles_changed(**_kwargs: Any) -> None:
    """Signal receiver: an article was saved or deleted in this process."""
    with _lock:
        _indexes.clear()


def confidence(scores: Sequence[float], temperature: float = 1.0) -> float:
    """The softmax share of the best score (see the module docstring). Pure."""
    if not scores:
        return 0.0
    top = max(scores)
    if top <= 0:
        return 0.0
    t = temperature if temperature > 0 else 1.0
    # Shifted by the top score for numerical stability: exp(0) = 1 for the top one.
    total = sum(math.exp((s - top) / t) for s in scores)
    return 1.0 / total


def document_tokens(title: str, tags: Sequence[str], body: str, locale: str) -> list[str]:
    title_tokens = tokenize(title, lang=locale)
    return [
        *title_tokens,
        *title_tokens,
        *tokenize(" ".join(tags), lang=locale),
        *tokenize(body, lang=locale),
    ]


def _stamp(locale: str) -> tuple[Any, ...]:
    agg = FaqArticle.objects.filter(locale=locale, published=True).aggregate(
        n=Count("id"), newest=Max("updated_at"), top=Max("id")
    )
    return (agg["n"], agg["newest"], agg["top"])


def _index(locale: str) -> _Index:
    stamp = _stamp(locale)
    with _lock:
        cached = _indexes.get(locale)
        if cached is not None and cached.stamp == stamp:
            return cached
    rows: list[dict[str, Any]] = [
        dict(row)
        for row in FaqArticle.objects.filter(locale=locale, published=True)
        .order_by("pk")
        .values("id", "key", "locale", "title", "body", "tags")
    ]
    corpus = [document_tokens(r["title"], r["tags"] or [], r["body"], locale) for r in rows]
    from rank_bm25 import BM25Okapi

    bm25 = BM25Okapi(corpus) if rows and any(corpus) else None
    index = _Index(stamp=stamp, articles=rows, bm25=bm25)
    with _lock:
        _indexes[locale] = index
    return index


def search(query: str, *, locale: str | None = None, limit: int = 3) -> Answer:
    """The best `limit` published articles for `query` in its language (`locale`, or
    detected from the text), with the confidence of the best one."""
    locale = locale if locale in ("ja", "en") else detect_language(query)
    threshold = float(conf.get("KIZUNA_SUPPORT_FAQ_THRESHOLD"))
    index = _index(locale)
    tokens = tokenize(query, lang=locale)
    if index.bm25 is None or not tokens:
        return Answer(query, locale, [], 0.0, threshold)
    scores = [float(s) for s in index.bm25.get_scores(tokens)]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    hits = [
        Hit(
            article_id=index.articles[i]["id"],
            key=index.articles[i]["key"],
            locale=locale,
            title=index.articles[i]["title"],
            body=index.articles[i]["body"],
            score=round(scores[i], 4),
        )
        for i in order[:limit]
        if scores[i] > 0
    ]
    temperature = float(conf.get("KIZUNA_SUPPORT_FAQ_TEMPERATURE"))
    return Answer(query, locale, hits, round(confidence(scores, temperature), 4), threshold)


def answer_text(answer: Answer) -> str:
    """The text of an automatic answer: the LLM's, grounded on the retrieved articles, when
    an endpoint is configured and answers; else the top article itself."""
    from kizuna.support import llm

    top = answer.top
    if top is None:
        return ""
    client = llm.client()
    if client is not None:
        text = client.answer(question=answer.query, articles=answer.hits, locale=answer.locale)
        if text:
            return text
    return f"{top.title}\n\n{top.body}"
