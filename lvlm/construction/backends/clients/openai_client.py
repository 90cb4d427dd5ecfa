"""Chat client for OpenAI-compatible endpoints (the OpenAI API for GPT-4/4V, or a local vLLM server).

``OpenAIChatClient`` wraps the official ``openai.AsyncOpenAI`` client with its own retries switched off, and
adds what dataset construction needs: bounded concurrency (a semaphore), an optional requests-per-minute
token bucket, retries with exponential backoff and full jitter on 429 / 408 / 409 / 5xx, timeouts, connection
errors and malformed replies (every retry counted), an on-disk reply cache keyed by the full canonical
request, de-duplication of identical requests in flight, and token and cost accounting.

The API key is read from the environment variable named by ``api_key_env`` and nothing else. It is never
stored in the cache, printed by ``repr``, reported by ``usage_summary`` or written to a log, and any error
text that contains it is redacted before it is logged or raised.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
from dataclasses import dataclass
from pathlib import Path

import openai

from lvlm.construction.backends.clients.base import (
    ChatRequestError,
    ChatResult,
    PerLoop,
    UsageCounter,
    validate_messages,
)
from lvlm.construction.backends.clients.cache import CoalescingCache, ResponseCache, request_key
from lvlm.construction.backends.clients.ratelimit import Backoff, TokenBucket
from lvlm.errors import ConfigError, LvlmError

log = logging.getLogger(__name__)

OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
NO_KEY_PLACEHOLDER = "EMPTY"  # what local vLLM servers without --api-key accept
REDACTED = "[REDACTED]"
RETRYABLE_STATUS = frozenset({408, 409, 429})
MAX_ERROR_CHARS = 300


class MalformedResponseError(Exception):
    """The server answered 2xx but the body is not a usable chat completion."""


@dataclass(frozen=True)
class _Failure:
    retryable: bool
    reason: str
    fix: str = ""
    retry_after_s: float | None = None
    kind: str = "error"  # ChatRequestError.kind


def read_api_key(api_key_env: str | None) -> str:
    """The key from ``$api_key_env``; ``None`` means an endpoint without authentication."""
    if api_key_env is None:
        return NO_KEY_PLACEHOLDER
    key = os.environ.get(api_key_env, "").strip()
    if not key:
        raise LvlmError(
            f"environment variable {api_key_env} is not set or empty; fix: export {api_key_env}=<your key> "
            "(or set api_key_env to the variable that holds it, or to null for an endpoint without auth)"
        )
    return key


def parse_completion(completion: object) -> ChatResult:
    """Turn a chat completion into a ``ChatResult``; raise ``MalformedResponseError`` if it is not one."""
    choices = getattr(completion, "choices", None)
    if isinstance(completion, str) or not isinstance(choices, list) or not choices:
        raise MalformedResponseError("reply has no choices (not a chat completion body)")
    message = getattr(choices[0], "message", None)
    content = getattr(message, "content", None)
    refusal = getattr(message, "refusal", None)
    if message is None or (content is not None and not isinstance(content, str)):
        raise MalformedResponseError("reply's choices[0].message.content is missing or not text")
    usage = getattr(completion, "usage", None)
    finish_reason = "refusal" if refusal else getattr(choices[0], "finish_reason", None)
    return ChatResult(
        text="" if refusal else (content or ""),
        prompt_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        completion_tokens=int(getattr(usage, "completion_tokens", 0) or 0),
        cached=False,
        finish_reason=finish_reason,
    )


def _retry_after_seconds(response: object) -> float | None:
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return float(value) / scale
        except ValueError:
            continue  # an HTTP-date retry-after: fall back to the jittered backoff
    return None


def _status_failure(exc: openai.APIStatusError, api_key_env: str | None) -> _Failure:
    status = exc.status_code
    detail = f"HTTP {status}: {getattr(exc, 'message', str(exc))}"[:MAX_ERROR_CHARS]
    if status == 429:
        return _Failure(True, detail, retry_after_s=_retry_after_seconds(exc.response), kind="rate_limit")
    if status in RETRYABLE_STATUS or status >= 500:
        return _Failure(True, detail, kind="server_error")
    if status in (401, 403):
        fix = f"check the API key in ${api_key_env} and its access to this model"
        return _Failure(False, detail, fix, kind="auth")
    if status == 404:
        return _Failure(False, detail, "check the model name and base_url", kind="not_found")
    fix = "the server rejected the request; check the messages and parameters"
    return _Failure(False, detail, fix, kind="rejected")


def classify_failure(exc: BaseException, *, timeout_s: float, api_key_env: str | None) -> _Failure | None:
    """How to react to an exception from one attempt; None for errors that are bugs, not transport issues."""
    if isinstance(exc, openai.APITimeoutError):
        return _Failure(True, f"no reply within timeout_s={timeout_s}", kind="timeout")
    if isinstance(exc, openai.APIConnectionError):
        return _Failure(True, f"connection error: {exc}"[:MAX_ERROR_CHARS], kind="connection")
    if isinstance(exc, openai.APIStatusError):
        return _status_failure(exc, api_key_env)
    if isinstance(exc, (MalformedResponseError, json.JSONDecodeError, openai.APIResponseValidationError)):
        return _Failure(True, f"malformed reply: {exc}"[:MAX_ERROR_CHARS], kind="malformed_reply")
    return None


class OpenAIChatClient:
    """Concurrent, cached, rate-limited chat completions against an OpenAI-compatible server."""

    name = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        requests_per_minute: float | None = None,
        max_retries: int = 6,
        timeout_s: float = 60.0,
        cache_dir: Path | str | None = None,
        price_per_1k_prompt: float = 0.0,
        price_per_1k_completion: float = 0.0,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 60.0,
        rpm_burst: int = 1,
        max_tokens_param: str = "max_tokens",
        retry_seed: int | None = None,
    ) -> None:
        _check_settings(concurrency, max_retries, timeout_s, max_tokens_param)
        self.model = model
        self.api_key_env = api_key_env
        self.concurrency = concurrency
        self.max_retries = max_retries
        self.timeout_s = timeout_s
        self.max_tokens_param = max_tokens_param
        self.prices = (price_per_1k_prompt, price_per_1k_completion)
        self._api_key = read_api_key(api_key_env)
        self.base_url = (base_url or OPENAI_DEFAULT_BASE_URL).rstrip("/")
        self._client = PerLoop(self._new_http_client)
        self._semaphore = PerLoop(lambda: asyncio.Semaphore(concurrency))
        self._limiter = (
            TokenBucket.per_minute(requests_per_minute, rpm_burst) if requests_per_minute else None
        )
        self._backoff = Backoff(backoff_base_s, backoff_max_s)
        self._rng = random.Random(retry_seed)
        self._usage = UsageCounter()
        cache = ResponseCache(cache_dir) if cache_dir is not None else None
        self._store = CoalescingCache(cache, self._usage, model=model)

    def __repr__(self) -> str:
        return (
            f"OpenAIChatClient(model={self.model!r}, base_url={self.base_url!r}, "
            f"concurrency={self.concurrency}, api_key_env={self.api_key_env!r})"
        )

    async def __aenter__(self) -> OpenAIChatClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def canonical_request(
        self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None
    ) -> dict:
        """Everything that determines the reply; its sha256 is the cache key."""
        return {
            "backend": self.name,
            "base_url": self.base_url,
            "model": self.model,
            "messages": messages,
            "temperature": temperature,
            "max_tokens": max_tokens,
            "seed": seed,
        }

    async def chat(
        self,
        messages: list[dict],
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
    ) -> ChatResult:
        validate_messages(messages)
        key = request_key(self.canonical_request(messages, temperature, max_tokens, seed))
        return await self._store.get_or_produce(
            key, lambda: self._call_with_retries(messages, temperature, max_tokens, seed)
        )

    def usage_summary(self) -> dict:
        return {"backend": self.name, "model": self.model, **self._usage.as_dict()}

    async def aclose(self) -> None:
        client = self._client.current()
        if client is not None:
            await client.close()

    # ----- internals ---------------------------------------------------------------------------------------
    def _new_http_client(self) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(
            api_key=self._api_key, base_url=self.base_url, max_retries=0, timeout=self.timeout_s
        )

    def _redact(self, text: str) -> str:
        if self._api_key and self._api_key != NO_KEY_PLACEHOLDER:
            text = text.replace(self._api_key, REDACTED)
        return text

    async def _call_with_retries(
        self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None
    ) -> ChatResult:
        failure: _Failure | None = None
        for attempt in range(self.max_retries + 1):
            try:
                return await self._call_once(messages, temperature, max_tokens, seed)
            except Exception as exc:
                failure = classify_failure(exc, timeout_s=self.timeout_s, api_key_env=self.api_key_env)
                if failure is None:
                    self._usage.failures += 1
                    raise
            if not failure.retryable or attempt == self.max_retries:
                break
            delay = self._backoff.delay(attempt, self._rng, failure.retry_after_s)
            self._usage.retries += 1
            log.warning(
                "%s",
                self._redact(
                    f"chat request to {self.base_url} ({self.model}): {failure.reason}; "
                    f"retry {attempt + 1}/{self.max_retries} in {delay:.2f} s"
                ),
            )
            await asyncio.sleep(delay)
        self._usage.failures += 1
        kind = failure.kind if failure is not None else "error"
        raise ChatRequestError(self._final_error(failure, attempts=attempt + 1), kind=kind)

    def _final_error(self, failure: _Failure | None, *, attempts: int) -> str:
        reason = failure.reason if failure else "unknown error"
        if failure is not None and not failure.retryable:
            head, fix = f"chat request to {self.base_url} ({self.model}) failed", failure.fix
        else:
            head = f"chat request to {self.base_url} ({self.model}) failed after {attempts} attempts"
            fix = "check that the server is reachable and healthy, or raise max_retries / timeout_s"
        return self._redact(f"{head}: {reason}; fix: {fix}".replace("\n", " "))

    async def _call_once(
        self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None
    ) -> ChatResult:
        params: dict = {"model": self.model, "messages": messages, "temperature": temperature}
        params[self.max_tokens_param] = max_tokens
        if seed is not None:
            params["seed"] = seed
        client = self._client.get()  # built before taking a rate token: the first build takes ~0.1 s
        async with self._semaphore.get():
            if self._limiter is not None:
                await self._limiter.acquire()
            self._usage.api_calls += 1
            completion = await client.chat.completions.create(**params)
        result = parse_completion(completion)
        if getattr(completion, "usage", None) is None:
            self._usage.responses_without_usage += 1
        price_prompt, price_completion = self.prices
        cost = (result.prompt_tokens * price_prompt + result.completion_tokens * price_completion) / 1000.0
        self._usage.add_reply(result, cost)
        return result


def _check_settings(concurrency: int, max_retries: int, timeout_s: float, max_tokens_param: str) -> None:
    if concurrency < 1:
        raise ConfigError(f"concurrency must be >= 1, got {concurrency}")
    if max_retries < 0:
        raise ConfigError(f"max_retries must be >= 0, got {max_retries}")
    if timeout_s <= 0:
        raise ConfigError(f"timeout_s must be > 0, got {timeout_s}")
    if max_tokens_param not in ("max_tokens", "max_completion_tokens"):
        raise ConfigError(
            f"max_tokens_param must be 'max_tokens' or 'max_completion_tokens', got '{max_tokens_param}'"
        )
