"""The chat-client interface every dataset-construction backend implements.

The construction pipeline only ever talks to a ``ChatClient``: it sends OpenAI-style chat messages and gets a
``ChatResult`` back. This file owns that contract (``ChatResult``, ``ChatClient``), the usage counters both
backends report through ``usage_summary()``, the error raised when a request finally fails, ``PerLoop`` (event
loop-bound resources) and the helpers that normalise OpenAI message content (strings or lists of parts).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Generic, Protocol, TypeVar, runtime_checkable

from lvlm.errors import LvlmError


@dataclass(frozen=True)
class ChatResult:
    """One assistant reply with its token usage.

    ``cached`` is true when the reply came from the on-disk cache (no model or network call was made).
    ``finish_reason`` follows the OpenAI values (``stop``, ``length``, ...) plus ``refusal`` when the model
    returned a refusal instead of content (``text`` is then empty).
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    cached: bool
    finish_reason: str | None = None


@runtime_checkable
class ChatClient(Protocol):
    """What the construction pipeline needs from a chat backend."""

    name: str
    model: str

    async def chat(
        self,
        messages: list[dict],
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
    ) -> ChatResult: ...

    def usage_summary(self) -> dict: ...

    async def aclose(self) -> None: ...


T = TypeVar("T")


class PerLoop(Generic[T]):
    """A value bound to the running event loop (semaphore, lock, HTTP client), rebuilt for a new loop.

    Lets one client object serve several ``asyncio.run`` calls one after another.
    """

    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._loop: asyncio.AbstractEventLoop | None = None
        self._value: T | None = None

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        if self._value is None or self._loop is not loop:
            self._value, self._loop = self._factory(), loop
        return self._value

    def current(self) -> T | None:
        """The value built for the running loop, or None if it has none yet."""
        loop = asyncio.get_running_loop()
        return self._value if self._loop is loop else None


class ChatRequestError(LvlmError):
    """A chat request failed for good (retries exhausted or a non-retryable error).

    ``kind`` is the failure class the build reports counts by: ``auth`` (401/403: stops the build),
    ``not_found``, ``rejected`` (other 4xx), ``rate_limit``, ``server_error``, ``timeout``, ``connection``,
    ``malformed_reply`` or ``error``. The message is one line with any API key redacted.
    """

    def __init__(self, message: str, kind: str = "error") -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple:  # keep ``kind`` when pickled (e.g. across processes)
        return (type(self), (str(self), self.kind))


@dataclass
class UsageCounter:
    """Running totals for one client; ``as_dict`` is what ``usage_summary()`` returns.

    ``requests`` counts ``chat()`` calls, ``api_calls`` the model/network calls actually made (retries
    included), ``deduplicated`` the calls that joined an identical request already in flight. Token counts and
    cost cover only replies produced by a real call, never cache hits.
    """

    requests: int = 0
    api_calls: int = 0
    cache_hits: int = 0
    deduplicated: int = 0
    retries: int = 0
    failures: int = 0
    empty_responses: int = 0
    refusals: int = 0
    responses_without_usage: int = 0
    corrupt_cache_entries: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def add_reply(self, result: ChatResult, cost_usd: float = 0.0) -> None:
        """Count a reply produced by a real call (tokens, cost, empty replies, refusals)."""
        self.cost_usd += cost_usd
        self.prompt_tokens += result.prompt_tokens
        self.completion_tokens += result.completion_tokens
        if result.finish_reason == "refusal":
            self.refusals += 1
        elif not result.text.strip():
            self.empty_responses += 1

    def as_dict(self) -> dict:
        summary = asdict(self)
        summary["cost_usd"] = round(self.cost_usd, 6)
        return summary


def content_parts(content: object, *, where: str) -> list[dict]:
    """Normalise a message ``content`` (string or list of parts) to a list of typed parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise LvlmError(
            f"{where}: message content must be a string or a list of parts, got {type(content).__name__}"
        )
    for index, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in ("text", "image_url"):
            raise LvlmError(f"{where}: content part {index} must be a dict with type 'text' or 'image_url'")
    return content


def message_text(content: object, *, where: str) -> str:
    """Concatenate the text parts of a message content (image parts are ignored)."""
    parts = content_parts(content, where=where)
    return "\n".join(str(part.get("text", "")) for part in parts if part["type"] == "text")


def has_images(messages: list[dict]) -> bool:
    """True when any message carries an ``image_url`` part."""
    return any(
        isinstance(message.get("content"), list)
        and any(isinstance(p, dict) and p.get("type") == "image_url" for p in message["content"])
        for message in messages
    )


def validate_messages(messages: object) -> list[dict]:
    """Check the OpenAI chat message shape and return the list unchanged; raise one clear line otherwise."""
    if not isinstance(messages, list) or not messages:
        raise LvlmError("chat messages must be a non-empty list of {'role': ..., 'content': ...} dicts")
    for index, message in enumerate(messages):
        where = f"chat message {index}"
        if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
            raise LvlmError(f"{where}: needs a 'role' of system, user or assistant")
        content_parts(message.get("content"), where=where)
    return messages
