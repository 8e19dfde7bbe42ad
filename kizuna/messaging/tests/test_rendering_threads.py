"""Rendering is safe from the several sending threads of one worker (KIZUNA_SEND_CONCURRENCY)."""

from __future__ import annotations

import threading

from kizuna.messaging.rendering import html_to_text


def _html(i: int) -> str:
    rows = "".join(
        f"<tr><td><p>行 {i}-{r} <a href='https://example.jp/{r}'>リンク</a></p></td></tr>"
        for r in range(40)
    )
    body = f"<h1>お知らせ {i}</h1><table>{rows}</table><p>山田様 &amp; {i}</p>"
    return f"<html><body>{body}</body></html>"


def test_html_to_text_from_many_threads_gives_each_its_own_text() -> None:
    documents = [_html(i) for i in range(24)]
    expected = [html_to_text(doc) for doc in documents]  # one thread, one at a time
    errors: list[BaseException] = []
    results: dict[tuple[int, int], str] = {}
    start = threading.Barrier(6)

    def convert(worker: int) -> None:
        start.wait()
        try:
            for round_ in range(6):
                for i, doc in enumerate(documents):
                    results[(worker, round_ * 100 + i)] = html_to_text(doc)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=convert, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(results) == 6 * 6 * len(documents)
    for (_worker, key), text in results.items():
        assert text == expected[key % 100]
