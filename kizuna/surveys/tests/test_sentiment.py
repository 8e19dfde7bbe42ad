from __future__ import annotations

import pytest

from kizuna.surveys import sentiment


@pytest.mark.parametrize(
    ("text", "label"),
    [
        ("スタッフの対応がとても丁寧で満足です", "positive"),
        ("コーヒーがおいしくて、また行きたいです", "positive"),
        ("アプリが使いやすいので気に入りました", "positive"),
        ("配送が遅くて残念でした", "negative"),
        ("美味しくなかった", "negative"),
        ("満足しませんでした", "negative"),
        ("説明が分かりにくい", "negative"),
        ("問題ないです", "positive"),
        ("明日の午後に行きます", "neutral"),
        ("The coffee was delicious and the staff were friendly", "positive"),
        ("Loved the fresh beans, thank you!", "positive"),
        ("Delivery was late and the box arrived damaged", "negative"),
        ("The barista was rude", "negative"),
        ("It was not good", "negative"),
        ("Not bad at all", "positive"),
        ("I ordered on Tuesday", "neutral"),
    ],
)
def test_sample_sentences(text: str, label: str) -> None:
    assert sentiment.analyze(text).label == label


def test_score_is_the_mean_polarity() -> None:
    result = sentiment.analyze("The coffee was great but the delivery was slow")
    assert result.score == 0.0 and result.label == "neutral"
    assert dict(result.hits) == {"great": 1, "slow": -1}
    assert sentiment.score("") is None
    assert sentiment.score("ポイントカード") is None


def test_lexicon_entries_meet_the_analysers_lemmas() -> None:
    lex = sentiment.lexicon()
    assert lex["美味しい"] == 1 and lex["遅い"] == -1
    assert lex[sentiment.stem_en("delicious")] == 1
