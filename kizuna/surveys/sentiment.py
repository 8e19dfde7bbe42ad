"""Dictionary-based sentiment for Japanese and English free text.

Method: the text is split into content-word terms by `kizuna.core.text.tokenize_marked`
(Japanese lemmas from SudachiPy, English light stems), each term looked up in the small
polarity lexicon below (+1 positive, -1 negative), the polarity flipped when the term is
negated ("not good", 美味しくない, 満足しませんでした), and the score is the mean polarity of
the terms found: -1.0 (all negative) .. +1.0 (all positive); `None` when no lexicon word
occurs. `label` is "positive" above +0.2, "negative" below -0.2, else "neutral".

The lexicon was written for kizuna (retail, food and service feedback vocabulary); it is not
an external resource. English entries are given as words and stemmed with the same
`stem_en` as the text, so "delicious", "loved", "slowly" match their inflections. A few
Japanese patterns are matched on the text itself (`JA_PHRASES`: 使いやすい, 分かりにくい,
気に入る, ありがとう), since the analyser splits their suffixes off. Limits:
no intensity, no sarcasm, words outside the lexicon are ignored.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from kizuna.core.text import normalize, stem_en, tokenize, tokenize_marked


def _words(block: str) -> list[str]:
    return block.split()


JA_POSITIVE = _words(
    """
良い 美味しい 旨い 嬉しい 楽しい 素晴らしい 素敵 最高 満足 便利 丁寧 親切 快適 好き 大好き
感謝 有り難い 助かる 安心 綺麗 気持ち良い 優しい 早い 速い 簡単 分かり易い 可愛い 気に入る
感動 おすすめ 推奨 お得 安い 新鮮 爽やか 心地良い 凄い 良好 喜ぶ 期待 信頼 充実 スムーズ 迅速
"""
)
JA_NEGATIVE = _words(
    """
悪い 不味い 遅い 高い 残念 不満 不便 不快 最悪 嫌い 嫌 困る 遅延 不良 故障 壊れる 汚い 面倒
不親切 失礼 怒る がっかり 問題 苦情 ひどい 酷い 不安 迷惑 難しい 分かり難い 煩い 痛い 冷たい
失望 後悔 不足 欠品 破損 誤配 間違い 間違える 待つ 待たせる 解約 二度と
"""
)
EN_POSITIVE = _words(
    """
good great excellent amazing awesome love like delicious tasty friendly helpful fast quick
easy happy pleased satisfied perfect wonderful nice fresh recommend clean comfortable kind
polite convenient reliable smooth fantastic best enjoy thank thanks beautiful cheap
"""
)
EN_NEGATIVE = _words(
    """
bad poor terrible awful horrible slow late expensive rude dirty broken damaged disappointed
disappointing hate dislike problem issue wrong worst annoying difficult confusing cold missing
refund complaint unhappy unfriendly useless waste delay delayed cancel stale
"""
)

# Japanese patterns the morphological split loses: verb + やすい (easy to: 使いやすい) and
# + にくい/づらい (hard to), set phrases. Counted on the normalised text.
JA_PHRASES: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"(?:やす|易)(?:い|かっ|く)"), 1),
    (re.compile(r"気に入"), 1),
    (re.compile(r"ありがと|有り難う"), 1),
    (re.compile(r"(?:にく|づら)(?:い|かっ|く)"), -1),
)


@functools.lru_cache(maxsize=1)
def lexicon() -> dict[str, int]:
    """Term → polarity. Japanese entries are also put through the analyser, so they meet the
    text's normalised lemmas (おいしい / 美味しい, すごい / 凄い); built once per process."""
    lex: dict[str, int] = {}
    for words, polarity in ((JA_POSITIVE, 1), (JA_NEGATIVE, -1)):
        for word in words:
            lex[word] = polarity
            terms = tokenize(word, "ja")
            if len(terms) == 1:
                lex[terms[0]] = polarity
    for words, polarity in ((EN_POSITIVE, 1), (EN_NEGATIVE, -1)):
        for word in words:
            lex[stem_en(word)] = polarity
    return lex


THRESHOLD = 0.2


@dataclass(frozen=True)
class Sentiment:
    score: float | None
    label: str  # positive / neutral / negative
    hits: tuple[tuple[str, int], ...]  # (term, signed polarity after negation)


def _label(score: float | None) -> str:
    if score is None:
        return "neutral"
    if score > THRESHOLD:
        return "positive"
    if score < -THRESHOLD:
        return "negative"
    return "neutral"


def analyze(text: str, lang: str | None = None) -> Sentiment:
    hits: list[tuple[str, int]] = []
    lex = lexicon()
    for term, negated in tokenize_marked(text, lang):
        polarity = lex.get(term)
        if polarity is None:
            continue
        hits.append((term, -polarity if negated else polarity))
    normalized = normalize(text)
    for pattern, polarity in JA_PHRASES:
        hits.extend((m.group(0), polarity) for m in pattern.finditer(normalized))
    score = round(sum(p for _t, p in hits) / len(hits), 3) if hits else None
    return Sentiment(score=score, label=_label(score), hits=tuple(hits))


def score(text: str, lang: str | None = None) -> float | None:
    return analyze(text, lang).score
