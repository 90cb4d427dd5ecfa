"""On-disk reply cache and in-flight de-duplication for chat clients.

A request is identified by the sha256 of its canonical JSON (sorted keys, no whitespace) covering everything
that determines the reply: backend, endpoint, model, messages, temperature, max_tokens and seed. Replies are
stored one JSON file per key (``<dir>/<key[:2]>/<key>.json``, written atomically) and hold only the reply and
its token counts — never the request, headers or credentials. ``CoalescingCache`` puts the disk cache in front
of a producer coroutine and makes identical concurrent requests share a single call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from lvlm.construction.backends.clients.base import ChatResult, UsageCounter

log = logging.getLogger(__name__)

CACHE_FORMAT_VERSION = 1


def canonical_json(payload: dict) -> str:
    """Deterministic JSON text of a request (sorted keys, compact separators, UTF-8 kept)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def request_key(payload: dict) -> str:
    """sha256 hex digest of the canonical request."""
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()


def is_cacheable(result: ChatResult) -> bool:
    """Refusals and empty replies are not cached, so a re-run asks again."""
    return result.finish_reason != "refusal" and bool(result.text.strip())


class ResponseCache:
    """A directory of cached replies, one JSON file per request key."""

    def __init__(self, cache_dir: Path | str) -> None:
        self.cache_dir = Path(cache_dir)
        self.cache_dir.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.json"

    def get(self, key: str, usage: UsageCounter | None = None) -> ChatResult | None:
        """The cached reply for ``key`` or None; an unreadable entry is logged, counted, treated as a miss."""
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            reply = record["reply"]
            return ChatResult(
                text=str(reply["text"]),
                prompt_tokens=int(reply["prompt_tokens"]),
                completion_tokens=int(reply["completion_tokens"]),
                cached=True,
                finish_reason=reply.get("finish_reason"),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("%s: unreadable cache entry (%s); it will be regenerated and overwritten", path, exc)
            if usage is not None:
                usage.corrupt_cache_entries += 1
            return None

    def put(self, key: str, result: ChatResult, *, model: str) -> Path:
        """Write a reply atomically (temporary file + rename) and return its path."""
        path = self.path_for(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        record = {
            "format": CACHE_FORMAT_VERSION,
            "key": key,
            "model": model,
            "reply": {
                "text": result.text,
                "prompt_tokens": result.prompt_tokens,
                "completion_tokens": result.completion_tokens,
                "finish_reason": result.finish_reason,
            },
        }
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False, indent=1))
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return path


class CoalescingCache:
    """Disk cache + single-flight: one producer call per distinct request, however many callers ask.

    Counts ``requests``, ``cache_hits`` and ``deduplicated``; the producer counts its own calls and tokens.
    """

    def __init__(self, cache: ResponseCache | None, usage: UsageCounter, *, model: str) -> None:
        self.cache = cache
        self.usage = usage
        self.model = model
        self._inflight: dict[str, asyncio.Task[ChatResult]] = {}

    async def get_or_produce(self, key: str, produce: Callable[[], Awaitable[ChatResult]]) -> ChatResult:
        """Return the cached reply, join an identical request in flight, or run ``produce`` once."""
        self.usage.requests += 1
        task = self._inflight.get(key)
        if task is not None:
            self.usage.deduplicated += 1
        else:
            task = asyncio.ensure_future(self._resolve(key, produce))
            self._inflight[key] = task
            task.add_done_callback(lambda _done: self._inflight.pop(key, None))
        return await asyncio.shield(task)

    async def _resolve(self, key: str, produce: Callable[[], Awaitable[ChatResult]]) -> ChatResult:
        if self.cache is not None:
            hit = self.cache.get(key, self.usage)
            if hit is not None:
                self.usage.cache_hits += 1
                return hit
        result = await produce()
        if self.cache is not None and is_cacheable(result):
            self.cache.put(key, result, model=self.model)
        return result

    @property
    def inflight(self) -> int:
        return len(self._inflight)
