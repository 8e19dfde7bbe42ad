from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from kizuna.support import faq, llm, services
from kizuna.support.models import FaqArticle
from kizuna.support.tests.conftest import ARTICLES

pytestmark = pytest.mark.django_db


def test_confidence_is_the_softmax_share_of_the_top_score() -> None:
    assert faq.confidence([]) == 0.0
    assert faq.confidence([0.0, 0.0]) == 0.0
    assert faq.confidence([5.0]) == 1.0
    assert faq.confidence([2.0, 2.0]) == pytest.approx(0.5)
    clear = faq.confidence([8.0, 1.0, 0.0, 0.0])
    weak = faq.confidence([1.0, 0.5, 0.0, 0.0])
    assert clear > 0.99 and weak < 0.5
    # a higher temperature flattens it
    assert faq.confidence([3.0, 1.0], temperature=4.0) < faq.confidence([3.0, 1.0])


def test_search_finds_the_article_in_japanese_and_english(articles) -> None:
    ja = faq.search("お店の営業時間は何時までですか？")
    assert ja.locale == "ja" and ja.top is not None and ja.top.key == "opening-hours"
    assert ja.confidence > 0.5
    en = faq.search("how much is shipping for coffee beans?")
    assert en.locale == "en" and en.top is not None and en.top.key == "beans-delivery"
    assert faq.search("ポイントはいつ失効しますか").top.key == "points-expiry"  # type: ignore[union-attr]
    nothing = faq.search("zebra quantum")
    assert nothing.hits == [] and nothing.confidence == 0.0 and not nothing.confident


def test_index_follows_edits_unpublishing_and_deletes(articles) -> None:
    assert faq.search("refund policy").hits == []
    refund = services.faq_article_save(
        key="refunds", locale="en", title="Refund policy", body="Refunds within 14 days."
    )
    assert faq.search("refund policy").top.key == "refunds"  # type: ignore[union-attr]
    services.faq_article_save(
        key="refunds",
        locale="en",
        title="Refund policy",
        body="Refunds within 14 days.",
        published=False,
        article=refund,
    )
    assert faq.search("refund policy").hits == []
    # a change made elsewhere (another process) is seen through the stamp
    FaqArticle.objects.filter(pk=refund.pk).update(published=True)
    assert faq.search("refund policy").top is not None
    services.faq_article_delete(article=refund)
    assert faq.search("refund policy").hits == []


def test_article_validation(articles) -> None:
    with pytest.raises(ValidationError) as exc:
        services.faq_article_save(key="Opening Hours!", locale="fr", title="", body=" ", tags=[""])
    assert set(exc.value.message_dict) == {"key", "locale", "title", "body", "tags"}
    with pytest.raises(ValidationError) as exc:
        k, lc, t, b, _tags = ARTICLES[0]
        services.faq_article_save(key=k, locale=lc, title=t, body=b)
    assert "already has an article" in exc.value.message_dict["key"][0]
    tagged = services.faq_article_save(
        key="wifi",
        locale="ja",
        title="Wi-Fi",
        body="店内でWi-Fiが使えます",
        tags="wifi、店舗, wifi",
    )
    assert tagged.tags == ["wifi", "店舗"]


@pytest.fixture
def chat_server() -> Iterator[dict[str, Any]]:
    """A local server speaking the chat-completions shape."""
    state: dict[str, Any] = {"requests": [], "fail": False}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append(
                {"path": self.path, "auth": self.headers.get("Authorization"), "body": body}
            )
            if state["fail"]:
                self.send_response(500)
                self.end_headers()
                return
            question = body["messages"][-1]["content"]
            reply = {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": f"LLM: {question}"},
                        "finish_reason": "stop",
                    }
                ],
            }
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield state
    server.shutdown()
    server.server_close()


def test_llm_is_off_by_default_and_answers_through_a_chat_completions_endpoint(
    articles, settings, chat_server
) -> None:
    answer = faq.search("What are your opening hours?")
    assert llm.client() is None
    assert faq.answer_text(answer).startswith("What are your opening hours?\n\nOur stores open")

    settings.KIZUNA_SUPPORT_LLM_URL = chat_server["url"]
    settings.KIZUNA_SUPPORT_LLM_MODEL = "local-model"
    settings.KIZUNA_SUPPORT_LLM_API_KEY = "sk-test"
    assert faq.answer_text(answer) == "LLM: What are your opening hours?"
    [request] = chat_server["requests"]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer sk-test"
    assert request["body"]["model"] == "local-model"
    assert "Our stores open 7am" in request["body"]["messages"][1]["content"]

    chat_server["fail"] = True  # the endpoint fails: the article answers instead
    assert faq.answer_text(answer).startswith("What are your opening hours?")
