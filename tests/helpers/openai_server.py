"""A loopback OpenAI-compatible chat server for offline tests and benchmarks (test support, not library).

``MockChatServer`` runs a real HTTP server on 127.0.0.1 (one thread per connection, HTTP/1.1 keep-alive)
that answers ``POST /v1/chat/completions`` the way the OpenAI API does: ``id``, ``model``,
``choices[0].message.content``, ``finish_reason`` and ``usage``. Every request waits ``latency_s`` before its
answer, concurrently with the others. Replies come from a ``responder`` callback (request body → text or
``Fault``); faults can also be scripted in order with ``inject``: 429 with ``retry-after``, 500, timeouts
(sleep past the client's timeout), malformed JSON, a body without ``choices``, empty content, refusals, 400
and 401. The server logs every request's body hash (to prove there were no duplicates), its outcome and
whether an Authorization header was present — never the header's value. ``GET /mock/stats`` and
``POST /mock/reset`` expose that log over HTTP, so the server can also run as its own process
(``python -m tests.helpers.openai_server --latency 0.2``, run from the repository root, prints its base URL
and serves until stopped).

    server = MockChatServer(latency_s=0.2)
    with server as base_url:          # "http://127.0.0.1:<port>/v1"
        ...
    server.duplicate_requests         # 0 when every request body was seen once
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import itertools
import json
import logging
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lvlm.errors import UnknownNameError

ERROR_FAULTS = {  # kind -> (HTTP status, default message, OpenAI error type)
    "rate_limit": (429, "Rate limit reached (mock)", "requests"),
    "server_error": (500, "mock internal error", "server_error"),
    "bad_request": (400, "bad request", "invalid_request_error"),
    "unauthorized": (401, "invalid API key", "invalid_request_error"),
}
FAULT_KINDS = (*ERROR_FAULTS, "timeout", "malformed_json", "bad_schema", "empty_content", "refusal")
MALFORMED_BODY = b'{"id": "chatcmpl-broken", "choices": [{"message": {"content": "trunc'
CHAT_PATH = "/v1/chat/completions"
STATS_PATH = "/mock/stats"  # GET: request counts as JSON (for a server running in another process)
RESET_PATH = "/mock/reset"  # POST: clear the request log
IMAGE_PART_TOKENS = 85

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fault:
    """A scripted misbehaviour for one request."""

    kind: str
    retry_after_s: float | None = None
    message: str = ""

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise UnknownNameError("mock server fault", self.kind, FAULT_KINDS)


Responder = Callable[[dict], "str | Fault"]


@dataclass(frozen=True)
class LoggedRequest:
    """What the server remembers about one request (no header values, no message text)."""

    key: str
    model: str
    has_authorization: bool
    outcome: str
    arrived_s: float  # time.monotonic() when the request was read


def body_key(body: dict) -> str:
    """sha256 of the canonical JSON request body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def _image_count(messages: list) -> int:
    return sum(
        1
        for m in messages
        if isinstance(m, dict) and isinstance(m.get("content"), list)
        for p in m["content"]
        if isinstance(p, dict) and p.get("type") == "image_url"
    )


def default_responder(body: dict) -> str:
    """A deterministic reply derived from the last user message."""
    users = [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "user"]
    last = _text_of(users[-1].get("content")) if users else ""
    return f"mock reply to: {last[:200]}"


def prompt_token_estimate(body: dict) -> int:
    """Whitespace-word count of all message text plus a fixed charge per image part."""
    messages = body.get("messages", [])
    words = sum(len(_text_of(m.get("content")).split()) for m in messages if isinstance(m, dict))
    return words + IMAGE_PART_TOKENS * _image_count(messages)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: avoid delayed-ACK stalls
    server: _MockHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # silence the default stderr access log
        return

    def _send_json(self, status: int, payload: object, headers: dict[str, str] | None = None) -> None:
        raw = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.rstrip("/") == STATS_PATH:
            self._send_json(200, self.server.mock.stats())
        else:
            self._send_json(404, {"error": {"message": f"unknown path {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        if self.path.rstrip("/") == RESET_PATH:
            self.server.mock.reset_log()
            self._send_json(200, {"reset": True})
            return
        if self.path.rstrip("/") != CHAT_PATH:
            self._send_json(404, {"error": {"message": f"unknown path {self.path}", "type": "not_found"}})
            return
        try:
            body = json.loads(raw)
        except ValueError:
            self._send_json(400, {"error": {"message": "body is not JSON", "type": "invalid_request_error"}})
            return
        try:
            self.server.mock.handle(self, body, has_authorization=bool(self.headers.get("Authorization")))
        except (BrokenPipeError, ConnectionResetError):
            return  # the client gave up (e.g. its timeout fired); nothing to answer


class _MockHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256
    mock: MockChatServer


class MockChatServer:
    """An OpenAI-compatible chat completions server on 127.0.0.1 with latency and fault injection."""

    def __init__(
        self,
        *,
        latency_s: float = 0.0,
        responder: Responder | None = None,
        faults: Iterable[Fault | str] = (),
        timeout_sleep_s: float = 5.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.latency_s = latency_s
        self.responder = responder or default_responder
        self.timeout_sleep_s = timeout_sleep_s
        self._address = (host, port)
        self._script: deque[Fault] = deque()
        self._log: list[LoggedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._ids = itertools.count(1)
        self._active = 0
        self.peak_concurrency = 0
        self._httpd: _MockHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.inject(*faults)

    # ----- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        """Bind, serve in a background thread, and return the ``/v1`` base URL."""
        if self._httpd is not None:
            return self.base_url
        self._stopping.clear()
        self._httpd = _MockHTTPServer(self._address, _Handler)
        self._httpd.mock = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mock-chat-server",
            daemon=True,
        )
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd, self._thread = None, None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("mock server is not running; call start() or use it as a context manager")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    # ----- scripting and log ------------------------------------------------------------------------------
    def inject(self, *faults: Fault | str) -> None:
        """Queue faults; each incoming request consumes the next one before the responder is asked."""
        with self._lock:
            self._script.extend(f if isinstance(f, Fault) else Fault(f) for f in faults)

    @property
    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    @property
    def total_requests(self) -> int:
        return len(self.requests)

    @property
    def duplicate_requests(self) -> int:
        """Arrivals beyond the first of each distinct body (retries count here too)."""
        return self.stats()["duplicate_requests"]

    def stats(self) -> dict:
        """Totals of the request log (``GET /mock/stats`` returns the same)."""
        requests = self.requests
        counts = Counter(r.key for r in requests)
        return {
            "total_requests": len(requests),
            "distinct_requests": len(counts),
            "duplicate_requests": sum(count - 1 for count in counts.values()),
            "peak_concurrency": self.peak_concurrency,
            "outcomes": dict(Counter(r.outcome for r in requests)),
        }

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()
            self.peak_concurrency = 0

    # ----- request handling (called on handler threads) ----------------------------------------------------
    def handle(self, handler: _Handler, body: dict, *, has_authorization: bool) -> None:
        arrived_s = time.monotonic()
        with self._lock:
            self._active += 1
            self.peak_concurrency = max(self.peak_concurrency, self._active)
            scripted = self._script.popleft() if self._script else None
        try:
            outcome = scripted if scripted is not None else self._respond(body)
            fault = outcome if isinstance(outcome, Fault) else None
            kind = fault.kind if fault else "ok"
            with self._lock:
                self._log.append(
                    LoggedRequest(
                        body_key(body), str(body.get("model", "")), has_authorization, kind, arrived_s
                    )
                )
            self._stopping.wait(self.latency_s + (self.timeout_sleep_s if kind == "timeout" else 0.0))
            reply = (
                (200, self._completion(body, str(outcome)), {})
                if fault is None
                else self._fault_reply(body, fault)
            )
            handler._send_json(*reply)
        finally:
            with self._lock:
                self._active -= 1

    def _respond(self, body: dict) -> str | Fault:
        try:
            return self.responder(body)
        except Exception as exc:  # a broken responder must not hang the client: answer 500 and say why
            log.exception("mock server responder failed")
            return Fault("server_error", message=f"responder failed: {type(exc).__name__}: {exc}")

    def _completion(self, body: dict, text: str, *, refusal: str | None = None) -> dict:
        words = text.split()
        max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
        finish_reason = "stop"
        if isinstance(max_tokens, int) and len(words) > max_tokens:
            words, text, finish_reason = words[:max_tokens], " ".join(words[:max_tokens]), "length"
        prompt_tokens = prompt_token_estimate(body)
        return {
            "id": f"chatcmpl-mock-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": str(body.get("model", "")),
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": None if refusal else text,
                        "refusal": refusal,
                    },
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": len(words),
                "total_tokens": prompt_tokens + len(words),
            },
        }

    def _fault_reply(self, body: dict, fault: Fault) -> tuple[int, object, dict[str, str]]:
        """Status, JSON payload (or raw bytes) and extra headers for a faulty reply."""
        if fault.kind in ERROR_FAULTS:
            status, default_message, error_type = ERROR_FAULTS[fault.kind]
            headers = {}
            if fault.kind == "rate_limit":
                wait = fault.retry_after_s or 0.0
                headers = {"retry-after": f"{wait:g}", "retry-after-ms": str(int(wait * 1000))}
            return (
                status,
                {"error": {"message": fault.message or default_message, "type": error_type}},
                headers,
            )
        if fault.kind == "malformed_json":
            return 200, MALFORMED_BODY, {}
        if fault.kind == "bad_schema":
            return 200, {"id": "chatcmpl-noschema", "object": "chat.completion", "created": 0}, {}
        if fault.kind == "refusal":
            return 200, self._completion(body, "", refusal=fault.message or "I can't help with that."), {}
        text = default_responder(body) if fault.kind == "timeout" else ""  # timeout: sent after the sleep
        return 200, self._completion(body, text), {}


def main(argv: list[str] | None = None) -> None:
    """Run the server in the foreground: ``python -m tests.helpers.openai_server --latency 0.2``.

    Prints the base URL on the first stdout line and serves until interrupted or terminated.
    """
    parser = argparse.ArgumentParser(description="Loopback OpenAI-compatible chat server for offline runs.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each reply")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with MockChatServer(latency_s=args.latency, host=args.host, port=args.port) as base_url:
        print(base_url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()


if __name__ == "__main__":
    main()
