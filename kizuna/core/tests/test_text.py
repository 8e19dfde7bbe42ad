from __future__ import annotations

import threading

import pytest

from kizuna.core import text


def test_normalize_folds_width_and_case() -> None:
    assert text.normalize("  ＡＢＣ　ｶﾀｶﾅ １２３ Hello\n\tWORLD ") == "abc カタカナ 123 hello world"
    assert text.normalize("") == ""


def test_detect_language() -> None:
    assert text.detect_language("配送が遅い") == "ja"
    assert text.detect_language("ポイント") == "ja"
    assert text.detect_language("The delivery was late") == "en"
    assert text.detect_language("") == "en"


def test_japanese_content_words_as_lemmas() -> None:
    tokens = text.tokenize("スタッフの対応がとても良かったです。でも配送が遅くて困りました。")
    assert tokens == ["スタッフ", "対応", "良い", "配送", "遅い", "困る"]


def test_japanese_stop_words_particles_and_numbers_dropped() -> None:
    tokens = text.tokenize("これは3回目の注文ですが、することがあります")
    assert "注文" in tokens
    for dropped in ("これ", "は", "3", "回", "する", "ある", "こと", "が"):
        assert dropped not in tokens


def test_japanese_full_width_and_half_width_meet() -> None:
    assert text.tokenize("ＡＢＣ商品") == text.tokenize("ABC商品") == ["abc", "商品"]
    assert text.tokenize("ｻﾎﾟｰﾄ") == text.tokenize("サポート")


def test_japanese_inflections_share_a_lemma() -> None:
    assert "買う" in text.tokenize("また買いたい")
    assert "買う" in text.tokenize("昨日買った")
    assert "遅い" in text.tokenize("遅かった")


def test_english_stop_words_and_stemming() -> None:
    tokens = text.tokenize("The deliveries were late, but the staff's service was friendly!")
    assert tokens == ["deliveri", "lat", "staff", "servic", "friend"]
    assert text.tokenize("delivery") == text.tokenize("Deliveries")
    assert text.tokenize("shipped") == text.tokenize("shipping") == ["ship"]
    assert text.tokenize("loved") == text.tokenize("love") == text.tokenize("loving")


def test_english_without_stemming_keeps_words() -> None:
    assert text.tokenize("Fast shipping and FRIENDLY staff", stem=False) == [
        "fast",
        "shipping",
        "friendly",
        "staff",
    ]


@pytest.mark.parametrize(
    ("word", "stem"),
    [("ships", "ship"), ("class", "class"), ("bus", "bus"), ("quickly", "quick"), ("is", "is")],
)
def test_stem_en(word: str, stem: str) -> None:
    assert text.stem_en(word) == stem


def test_explicit_language_overrides_detection() -> None:
    # Forcing English on Japanese text yields its Latin words only through the regex path.
    assert text.tokenize("good サービス", lang="en") == ["good", "サービス"]
    assert text.tokenize("good service", lang="ja") == ["good", "servic"]


def test_mixed_japanese_text_uses_english_rules_for_latin_words() -> None:
    tokens = text.tokenize("iPhoneアプリのshippingが速い")
    assert "ship" in tokens and "アプリ" in tokens and "速い" in tokens


def test_empty_and_punctuation_only() -> None:
    assert text.tokenize("") == []
    assert text.tokenize("。、！？…") == []
    assert text.tokenize("!!! ... ???") == []


def test_long_text_is_chunked() -> None:
    long = "配送が遅い。" * 5000  # 30,000 characters, over Sudachi's single-input limit
    tokens = text.tokenize(long)
    assert tokens.count("配送") == 5000


def test_ngrams() -> None:
    assert text.ngrams(["fast", "deliveri", "friend"], 2) == ["fast deliveri", "deliveri friend"]
    assert text.ngrams(["配送", "遅い"], 2, lang="ja") == ["配送遅い"]
    assert text.ngrams(["a"], 2) == []
    with pytest.raises(ValueError):
        text.ngrams(["a"], 0)


def test_threads_get_their_own_tokenizer() -> None:
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(50):
                results.append(text.tokenize("スタッフの対応が良かった"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(results) == 200
    assert all(r == ["スタッフ", "対応", "良い"] for r in results)


def test_negation_marks_in_japanese() -> None:
    assert text.tokenize_marked("美味しくない") == [("美味しい", True)]
    assert text.tokenize_marked("満足しませんでした") == [("満足", True)]
    assert text.tokenize_marked("二度と買わない") == [("買う", True)]
    assert text.tokenize_marked("とても良かった") == [("良い", False)]
    # The negation does not reach across punctuation.
    assert text.tokenize_marked("良い。ない") == [("良い", False)]


def test_negation_marks_in_english() -> None:
    assert text.tokenize_marked("The coffee was not good") == [
        ("coffee", False),
        ("good", True),
    ]
    assert ("lik", True) in text.tokenize_marked("I didn't like the staff")
    # A clause boundary ends the negation.
    marked = text.tokenize_marked("Not cheap, but delicious")
    assert ("cheap", True) in marked and ("delicious", False) in marked
