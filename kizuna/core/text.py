"""Japanese/English text analysis shared by search (support's BM25) and survey analytics.

Pure functions, no Django models:

- `normalize(text)`: Unicode NFKC (full-width ＡＢＣ/１２３ → ABC/123, half-width ｶﾅ → カナ)
  then case-folding; whitespace runs collapsed.
- `detect_language(text)`: "ja" when the text contains kana or kanji, else "en".
- `tokenize(text, lang=None, *, stem=True)`: content words as normalised terms.
  Japanese: morphological analysis by SudachiPy (split mode B, a middle-length unit that
  suits both search and keyword counts) keeping nouns (not numerals, pronouns or bound
  nouns), verbs, adjectives (形容詞) and adjectival nouns (形状詞) as their normalised
  lemma (`normalized_form`: 良かっ → 良い, 買い → 買う, ＡＢＣ → abc), stop words removed.
  Latin-script words inside Japanese text, and all of English text, go through the English
  path: a regex tokenizer (letters/digits, inner apostrophes), stop words removed, light
  suffix stemming (`stem_en`: plural -s/-es/-ies, -ing, -ed, -ly, a final silent e) so
  "delivery"/"deliveries" and "shipped"/"shipping" meet. `stem=False` keeps the folded words
  (for showing keywords to people).
- `tokenize_marked(...)`: the same terms paired with a negation flag ("not good", 良くない).
- `ngrams(tokens, n)`: adjacent token phrases, joined by a space (English) or nothing
  (Japanese), for phrase frequencies.

The Japanese analyser is loaded lazily, once per process (the dictionary is memory-mapped);
each thread gets its own tokenizer object because SudachiPy tokenizers are not shareable
between threads.

Dictionary source and licence: the Japanese dictionary is SudachiDict "core" edition, shipped
inside the PyPI package `sudachidict-core` (Works Applications Co., Ltd., Apache License 2.0;
the lexicon is built from UniDic and NEologd resources as documented by the SudachiDict
project), read by `sudachipy` (Apache License 2.0). Nothing is downloaded at run time. The stop
word lists below are written for this module (short closed-class word lists).
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = [
    "EN_STOP_WORDS",
    "JA_STOP_WORDS",
    "detect_language",
    "ngrams",
    "normalize",
    "stem_en",
    "tokenize",
    "tokenize_marked",
]

_SPACE_RE = re.compile(r"\s+")
_JA_RE = re.compile(r"[\u3040-\u309f\u30a0-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# A word: letters/digits, optionally with inner apostrophes or hyphens ("don't", "e-mail").
_EN_WORD_RE = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
_LATIN_RE = re.compile(r"^[a-z0-9'’\-]+$")
_VOWELS = frozenset("aeiouy")


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


EN_STOP_WORDS: frozenset[str] = _words(
    """
    a about above after again against all am an and any are aren't as at be because been before
    being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each few for from further get got had hadn't has hasn't have haven't
    having he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll
    i'm i've if in into is isn't it it's its itself just let's me more most mustn't my myself no
    nor not of off on once only or other ought our ours ourselves out over own really same shan't
    she she'd she'll she's should shouldn't so some such than that that's the their theirs them
    themselves then there there's these they they'd they'll they're they've this those through
    to too under until up us very was wasn't we we'd we'll we're we've were weren't what what's
    when when's where where's which while who who's whom why why's will with won't would
    wouldn't you you'd you'll you're you've your yours yourself yourselves also im ive dont
    """
)

JA_STOP_WORDS: frozenset[str] = _words(
    """
    する 為る ある 有る 在る いる 居る なる 成る 出来る できる 思う 言う 云う 行う 見る 来る くる
    こと 事 もの 物 ため 為 よう 様 ところ 所 とき 時 方 かた ほう 感じ 的 等 など 他 ほか
    中 内 上 下 前 後 今 今回 今日 際 点 場合 人 さん ない 無い 良う いい 御 お ご 頃 くらい 位
    ほど 程
    """
)

# Sudachi part-of-speech heads kept as content words, and sub-categories dropped.
_JA_CONTENT_POS = frozenset({"名詞", "動詞", "形容詞", "形状詞"})
_JA_DROPPED_NOUNS = frozenset({"数詞", "助動詞語幹"})
_JA_CHUNK = 4000  # characters per analysis call (Sudachi refuses inputs over ~49 kB)


def normalize(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed to single spaces and stripped."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text or "").casefold()).strip()


def detect_language(text: str) -> str:
    """ "ja" if the text contains any kana or kanji, else "en"."""
    return "ja" if _JA_RE.search(text or "") else "en"


def stem_en(word: str) -> str:
    """Light English suffix stripping (a small subset of Porter's step 1 plus -ly).

    Not a full stemmer: it only makes inflected forms of one word meet."""
    w = word.replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) <= 3:
        return w
    if w.endswith("sses"):
        w = w[:-2]
    elif w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith("s") and not w.endswith(("ss", "us", "is")):
        w = w[:-1]
    for suffix in ("ingly", "edly", "ing", "ed"):
        if w.endswith(suffix):
            base = w[: -len(suffix)]
            if len(base) >= 3 and _VOWELS.intersection(base):
                w = base
                if len(w) > 3 and w[-1] == w[-2] and w[-1] not in "lsz":
                    w = w[:-1]  # shipping → shipp → ship
            break
    if w.endswith("ly") and len(w) > 5:
        w = w[:-2]
    if w.endswith("y") and len(w) > 3 and w[-2] not in _VOWELS:
        w = w[:-1] + "i"  # delivery / deliveries → deliveri
    if w.endswith("e") and len(w) > 3 and w[-2] not in _VOWELS:
        w = w[:-1]  # service / services → servic
    return w


_EN_NEGATORS = frozenset(
    {"not", "no", "never", "nothing", "hardly", "without", "cannot", "nor", "neither"}
)
_EN_CLAUSE_RE = re.compile(r"[.,;:!?()\n]+| but ")
NEGATION_WINDOW = 3  # words after "not" (English) / morphemes before ない (Japanese)


def _english_term(word: str, stem: bool) -> str | None:
    word = word.replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    if word in EN_STOP_WORDS or len(word) < 2 or word.isdigit():
        return None
    term = stem_en(word) if stem else word
    return term if term and term not in EN_STOP_WORDS else None


def _marked_en(text: str, stem: bool) -> list[tuple[str, bool]]:
    out: list[tuple[str, bool]] = []
    for clause in _EN_CLAUSE_RE.split(text):
        negate_left = 0
        for m in _EN_WORD_RE.finditer(clause):
            word = m.group(0).replace("’", "'")
            if word in _EN_NEGATORS or word.endswith("n't"):
                negate_left = NEGATION_WINDOW
                continue
            term = _english_term(word, stem)
            if term is not None:
                out.append((term, negate_left > 0))
            negate_left = max(0, negate_left - 1)
    return out


@functools.lru_cache(maxsize=1)
def _sudachi_dictionary() -> Any:
    from sudachipy import Dictionary

    return Dictionary(dict="core")


_local = threading.local()


def _sudachi() -> Any:
    tok = getattr(_local, "tokenizer", None)
    if tok is None:
        from sudachipy import SplitMode

        tok = _sudachi_dictionary().tokenizer(mode=SplitMode.B)
        _local.tokenizer = tok
    return tok


def _chunks(text: str) -> Iterator[str]:
    """Cut long text into pieces under `_JA_CHUNK` characters, at sentence ends if possible."""
    while len(text) > _JA_CHUNK:
        cut = max(text.rfind(sep, 0, _JA_CHUNK) for sep in ("。", "\n", ".", "!", "?", " "))
        cut = cut + 1 if cut > 0 else _JA_CHUNK
        yield text[:cut]
        text = text[cut:]
    if text:
        yield text


def _is_ja_negator(pos: Sequence[str], base: str) -> bool:
    return (pos[0] == "助動詞" and base in {"ない", "ぬ", "ず", "ん"}) or (
        pos[0] == "形容詞" and pos[1] == "非自立可能" and base == "ない"
    )


def _marked_ja(text: str, stem: bool) -> list[tuple[str, bool]]:
    tok = _sudachi()
    out: list[tuple[str, bool]] = []
    for chunk in _chunks(text):
        after_numeral = False
        since_content = NEGATION_WINDOW + 1  # morphemes since the last content word
        for m in tok.tokenize(chunk):
            pos = m.part_of_speech()
            base = m.dictionary_form()
            if _is_ja_negator(pos, base):
                # 美味しくない, 買わない, 満足しません: the content word just before is negated.
                if out and since_content <= NEGATION_WINDOW and not out[-1][1]:
                    out[-1] = (out[-1][0], True)
                since_content = NEGATION_WINDOW + 1
                continue
            since_content += 1
            if pos[0] == "補助記号":
                since_content = NEGATION_WINDOW + 1
            counter = after_numeral and pos[2] == "助数詞可能"  # 3回, 5円: a count, not a topic
            after_numeral = pos[1] == "数詞"
            if pos[0] not in _JA_CONTENT_POS or counter:
                continue
            if pos[0] == "名詞" and pos[1] in _JA_DROPPED_NOUNS:
                continue
            surface = m.surface()
            if _LATIN_RE.match(surface):
                # Latin-script words keep their spelling (Sudachi's normalised form of
                # "good" is グッド) and follow the English rules.
                term = _english_term(surface, stem)
                if term is not None:
                    out.append((term, False))
                    since_content = 0
                continue
            lemma = normalize(m.normalized_form())
            if not lemma or lemma in JA_STOP_WORDS or normalize(base) in JA_STOP_WORDS:
                continue
            if len(lemma) == 1 and not _JA_RE.match(lemma):
                continue  # a lone kana or symbol carries no content
            out.append((lemma, False))
            since_content = 0
    return out


def tokenize_marked(
    text: str, lang: str | None = None, *, stem: bool = True
) -> list[tuple[str, bool]]:
    """`tokenize`, each term paired with whether it is negated: English "not good", "didn't
    like it" (up to three words after the negator, within the clause); Japanese
    良くない, 買わない, 満足しませんでした (the content word right before ない/ぬ/ず). For
    dictionary-based sentiment."""
    normalized = normalize(text)
    if not normalized:
        return []
    language = lang or detect_language(normalized)
    if language == "ja":
        return _marked_ja(normalized, stem)
    return _marked_en(normalized, stem)


def tokenize(text: str, lang: str | None = None, *, stem: bool = True) -> list[str]:
    """Content-word terms of `text` in order (duplicates kept, for counting).

    `lang` is "ja" or "en"; `None` detects it (`detect_language`). Japanese analysis also
    handles the Latin-script words in the text through the English rules."""
    return [term for term, _negated in tokenize_marked(text, lang, stem=stem)]


def ngrams(tokens: Sequence[str], n: int = 2, *, lang: str = "en") -> list[str]:
    """Adjacent `n`-token phrases: "fast delivery"; Japanese joined without a space."""
    if n < 1:
        raise ValueError("n must be at least 1")
    joiner = "" if lang == "ja" else " "
    return [joiner.join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
