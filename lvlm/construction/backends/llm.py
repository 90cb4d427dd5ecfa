"""The LLM construction backends ``openai`` and ``hf``: the generators as prompts sent to a ``ChatClient``.

``LLMGenerator`` holds two clients, one for captions (a vision model, GPT-4V in the paper) and one for the
question-answer and answer generators (GPT-4); they may be the same client. Requests are built from
``prompts``; a regeneration after a failed format check continues the conversation with the previous reply
and a correction that names the checker's reason. The clients (``clients``) own retries, rate limits and
the on-disk request cache; this module only turns replies into text or ``SkipItem``, and registers the two
backends (``make_openai_generator``, ``make_hf_generator``) with the chat client each one builds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from lvlm.construction.backends import prompts
from lvlm.construction.backends.base import Feedback, ImageItem, QADraft, SkipItem, register_backend
from lvlm.construction.backends.clients.base import ChatClient
from lvlm.errors import DataError

DEFAULT_MAX_TOKENS = {"caption": 300, "question_answer": 800, "answer": 400}

# construction config keys forwarded to OpenAIChatClient (everything else is pipeline settings)
OPENAI_CLIENT_KEYS = (
    "base_url",
    "api_key_env",
    "concurrency",
    "requests_per_minute",
    "max_retries",
    "timeout_s",
    "cache_dir",
    "price_per_1k_prompt",
    "price_per_1k_completion",
)


def _text(content: str) -> dict[str, str]:
    return {"type": "text", "text": content}


class LLMGenerator:
    """Caption / question-answer / answer generators over chat clients."""

    def __init__(
        self,
        backend: str,
        caption_client: ChatClient,
        text_client: ChatClient,
        *,
        models: dict[str, str],
        temperature: float = 0.0,
        max_tokens: dict[str, int] | None = None,
        seed: int | None = 0,
        image_max_side: int | None = None,
        image_format: str = "png",
    ) -> None:
        self.backend = backend
        self.image_max_side, self.image_format = image_max_side, image_format
        self.caption_client, self.text_client = caption_client, text_client
        self.models = models
        self.temperature, self.seed = temperature, seed
        self.max_tokens = {**DEFAULT_MAX_TOKENS, **(max_tokens or {})}

    async def _chat(self, client: ChatClient, messages: list[dict], purpose: str) -> str:
        result = await client.chat(
            messages, temperature=self.temperature, max_tokens=self.max_tokens[purpose], seed=self.seed
        )
        finish = getattr(result, "finish_reason", None)
        if finish == "refusal":
            raise SkipItem("refusal", f"the model refused the {purpose} request")
        if finish == "length":
            raise SkipItem("truncated", f"{purpose} reply hit max_tokens={self.max_tokens[purpose]}")
        return (result.text or "").strip()

    async def caption(self, item: ImageItem) -> str:
        from lvlm.construction.backends.clients.images import image_part

        try:
            # decoding and re-encoding a photo takes tens of ms: keep it off the event loop
            picture = await asyncio.to_thread(
                image_part, Path(item.path), self.image_max_side, fmt=self.image_format
            )
        except DataError as exc:
            raise SkipItem("corrupt_image", str(exc)) from exc
        messages = [
            {"role": "system", "content": prompts.CAPTION_SYSTEM},
            {"role": "user", "content": [_text(prompts.CAPTION_USER), picture]},
        ]
        return await self._chat(self.caption_client, messages, "caption")

    async def question_answer(
        self, item: ImageItem, caption: str, instruction: Any, feedback: Feedback | None
    ) -> QADraft:
        user = prompts.QA_USER.format(caption=caption, instruction=instruction.text)
        messages = [{"role": "system", "content": prompts.QA_SYSTEM}, {"role": "user", "content": user}]
        if feedback is not None:
            previous = feedback.previous.raw if feedback.previous is not None else ""
            messages.append({"role": "assistant", "content": previous})
            messages.append({"role": "user", "content": prompts.CORRECTION.format(reason=feedback.reason)})
        raw = await self._chat(self.text_client, messages, "question_answer")
        parsed = prompts.parse_tagged_reply(raw)
        if parsed is None:
            return QADraft("", "", raw)  # the pipeline treats missing tags as a failed attempt
        return QADraft(parsed.question, parsed.answer, raw)

    async def answer(self, item: ImageItem, caption: str, question: str) -> str:
        user = prompts.ANSWER_USER.format(caption=caption, question=question)
        messages = [{"role": "system", "content": prompts.ANSWER_SYSTEM}, {"role": "user", "content": user}]
        return await self._chat(self.text_client, messages, "answer")

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "models": dict(self.models),
            "prompts": prompts.prompt_set(),
            "params": {
                "temperature": self.temperature,
                "max_tokens": dict(self.max_tokens),
                "seed": self.seed,
            },
        }

    def _clients(self) -> list[Any]:
        return (
            [self.caption_client]
            if self.caption_client is self.text_client
            else [
                self.caption_client,
                self.text_client,
            ]
        )

    def usage_summary(self) -> dict[str, Any]:
        return merge_usage([client.usage_summary() for client in self._clients()])

    async def aclose(self) -> None:
        for client in self._clients():
            await client.aclose()


def merge_usage(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Sum numeric usage fields (tokens, requests, cost) over several summaries; other fields keep their
    distinct values (one value stays a scalar, several become a list, e.g. two model names)."""
    merged: dict[str, Any] = {}
    others: dict[str, list[Any]] = {}
    for summary in summaries:
        for key, value in summary.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                seen = others.setdefault(key, [])
                if value not in seen:
                    seen.append(value)
            else:
                merged[key] = merged.get(key, 0) + value
    for key, values in others.items():
        merged[key] = values[0] if len(values) == 1 else values
    if isinstance(merged.get("cost_usd"), float):
        merged["cost_usd"] = round(merged["cost_usd"], 6)
    return merged


def _models(cfg: Any) -> dict[str, str]:
    text_model = str(cfg.model)
    caption_model = str(cfg.get("caption_model") or text_model)
    return {"caption": caption_model, "question_answer": text_model, "answer": text_model}


def _generator_params(cfg: Any) -> dict[str, Any]:
    max_tokens = cfg.get("max_tokens") or {}
    return {
        "temperature": float(cfg.get("temperature", 0.0)),
        "max_tokens": {str(k): int(v) for k, v in dict(max_tokens).items()},
        "seed": cfg.get("seed", 0),
        "image_max_side": cfg.get("image_max_side"),
        "image_format": str(cfg.get("image_format") or "png"),
    }


def _make(backend: str, cfg: Any, settings: dict[str, Any]) -> LLMGenerator:
    from lvlm.construction.backends.clients import build_chat_client

    models = _models(cfg)
    text_client = build_chat_client(backend, model=models["answer"], **settings)
    caption_client = (
        text_client
        if models["caption"] == models["answer"]
        else build_chat_client(backend, model=models["caption"], **settings)
    )
    return LLMGenerator(backend, caption_client, text_client, models=models, **_generator_params(cfg))


@register_backend("openai")
def make_openai_generator(cfg: Any) -> LLMGenerator:
    """Backend ``openai``: any OpenAI-compatible server (``construction.base_url``, ``construction.model``);
    ``construction.client`` may add further ``OpenAIChatClient`` settings (e.g. ``backoff_base_s``)."""
    settings = {key: cfg[key] for key in OPENAI_CLIENT_KEYS if cfg.get(key) is not None}
    return _make("openai", cfg, {**settings, **dict(cfg.get("client") or {})})


@register_backend("hf")
def make_hf_generator(cfg: Any) -> LLMGenerator:
    """Backend ``hf``: a local transformers chat model; ``construction.client`` holds its settings."""
    return _make("hf", cfg, dict(cfg.get("client") or {}))
