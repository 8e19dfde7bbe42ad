"""Optional answer writing by a large language model behind an OpenAI-compatible
chat-completions endpoint (a local server such as llama.cpp/vLLM/Ollama, or a provider).

Off by default and never required: with KIZUNA_SUPPORT_LLM_URL empty, `client()` is None and
the FAQ assistant answers with the retrieved article itself. When set, the model is given the
retrieved articles and told to answer only from them; any failure (timeout, HTTP error,
malformed reply) falls back to the article, so the assistant never depends on it.

Plain HTTP with the standard library (`urllib`): the `openai` package is not installed in
this project, and the request is one JSON POST.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Protocol

from kizuna.support import conf

logger = logging.getLogger(__name__)

SYSTEM_PROMPT = {
    "ja": (
        "あなたはカスタマーサポートの担当者です。以下のFAQ記事だけを根拠に、"
        "お客様の質問に丁寧な日本語で簡潔に答えてください。記事に答えがない場合は"
        "「担当者よりご連絡いたします」とだけ答えてください。"
    ),
    "en": (
        "You are a customer-support agent. Answer the customer's question briefly and politely "
        "using only the FAQ articles below. If they do not contain the answer, reply only "
        '"A member of our team will get back to you."'
    ),
}


class ArticleLike(Protocol):
    @property
    def title(self) -> str: ...

    @property
    def body(self) -> str: ...


class AnswerWriter(Protocol):
    def answer(self, *, question: str, articles: Sequence[ArticleLike], locale: str) -> str: ...


class ChatCompletionsClient:
    """POST {base_url}/chat/completions in the OpenAI request/response shape."""

    def __init__(self, *, base_url: str, model: str, api_key: str = "", timeout: float = 10.0):
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key = api_key
        self.timeout = timeout

    def request_body(
        self, *, question: str, articles: Sequence[ArticleLike], locale: str
    ) -> dict[str, Any]:
        context = "\n\n".join(f"# {a.title}\n{a.body}" for a in articles)
        return {
            "model": self.model,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT.get(locale, SYSTEM_PROMPT["en"])},
                {"role": "system", "content": context},
                {"role": "user", "content": question},
            ],
        }

    def answer(self, *, question: str, articles: Sequence[ArticleLike], locale: str) -> str:
        """The model's answer, or "" when the endpoint fails (the caller falls back)."""
        data = json.dumps(
            self.request_body(question=question, articles=articles, locale=locale)
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = json.loads(response.read().decode("utf-8"))
            content = payload["choices"][0]["message"]["content"]
        except (urllib.error.URLError, OSError, ValueError, KeyError, IndexError, TypeError):
            logger.warning("support: the LLM endpoint %s did not answer", self.url, exc_info=True)
            return ""
        return content.strip() if isinstance(content, str) else ""


def client() -> AnswerWriter | None:
    url = str(conf.get("KIZUNA_SUPPORT_LLM_URL") or "")
    if not url:
        return None
    if not url.startswith(("http://", "https://")):
        logger.warning("support: KIZUNA_SUPPORT_LLM_URL must be an http(s) URL; LLM off")
        return None
    return ChatCompletionsClient(
        base_url=url,
        model=str(conf.get("KIZUNA_SUPPORT_LLM_MODEL") or "default"),
        api_key=str(conf.get("KIZUNA_SUPPORT_LLM_API_KEY") or ""),
        timeout=float(conf.get("KIZUNA_SUPPORT_LLM_TIMEOUT")),
    )
