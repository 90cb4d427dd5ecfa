"""Benchmark: throughput of the OpenAI-compatible chat client versus its concurrency limit.

Starts the loopback ``MockChatServer`` with a fixed per-request latency (200 ms by default, a stand-in for a
remote GPT-4 call) in its own process, as a real server would be (``--in-process`` serves from threads of this
process instead, where the server competes with the client for the GIL). Sends N distinct requests through
``OpenAIChatClient`` at each concurrency level (no cache, no rate limit; one untimed warm-up request per level
builds the HTTP client first) and prints requests, wall time, requests/s, speed-up over concurrency 1, the
duplicate requests the server saw and its peak number of simultaneous requests. Goal: at least 20x the
sequential throughput at concurrency 32 with zero duplicates; the exit code is 1 when it is missed.

    .venv/bin/python benchmarks/bench_construction_concurrency.py [--requests 128] [--latency 0.2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script: make ``tests.helpers`` importable
    sys.path.insert(0, str(REPO_ROOT))

from lvlm.construction.backends.clients.openai_client import OpenAIChatClient  # noqa: E402
from tests.helpers.openai_server import RESET_PATH, STATS_PATH, MockChatServer  # noqa: E402

GOAL_SPEEDUP = 20.0
GOAL_CONCURRENCY = 32


@dataclass(frozen=True)
class LevelResult:
    concurrency: int
    requests: int
    wall_s: float
    requests_per_s: float
    server_requests: int
    duplicates: int
    server_peak: int
    client_retries: int


class ServerHandle(Protocol):
    base_url: str

    def stats(self) -> dict: ...

    def reset_log(self) -> None: ...


class ServerProcess:
    """``python -m tests.helpers.openai_server`` in a child process, queried over HTTP."""

    def __init__(self, latency_s: float) -> None:
        command = [sys.executable, "-m", "tests.helpers.openai_server", "--latency", str(latency_s)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
        self.base_url = (self._process.stdout.readline() if self._process.stdout else "").strip()
        if not self.base_url.startswith("http://"):
            self.close()
            raise RuntimeError(f"mock server process did not report its URL (got {self.base_url!r})")
        self._root = self.base_url.removesuffix("/v1")

    def stats(self) -> dict:
        with urllib.request.urlopen(self._root + STATS_PATH, timeout=10) as response:
            return json.loads(response.read())

    def reset_log(self) -> None:
        urllib.request.urlopen(
            urllib.request.Request(self._root + RESET_PATH, data=b"{}"), timeout=10
        ).close()

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


async def _timed_run(client: OpenAIChatClient, prompts: list[str], server: ServerHandle) -> float:
    """An untimed warm-up request (builds the HTTP client), then all prompts at once; returns seconds."""
    try:
        await client.chat([{"role": "user", "content": f"warm-up {prompts[0]}"}], max_tokens=8)
        server.reset_log()
        started = time.perf_counter()
        await asyncio.gather(*(client.chat([{"role": "user", "content": p}], max_tokens=64) for p in prompts))
        return time.perf_counter() - started
    finally:
        await client.aclose()


def run_level(server: ServerHandle, concurrency: int, n_requests: int) -> LevelResult:
    """Send ``n_requests`` distinct prompts at one concurrency level and measure them."""
    client = OpenAIChatClient(
        "mock-gpt-4", base_url=server.base_url, api_key_env=None, concurrency=concurrency, timeout_s=30.0
    )
    prompts = [f"level {concurrency}: describe image number {i} in one sentence" for i in range(n_requests)]
    wall_s = asyncio.run(_timed_run(client, prompts, server))
    stats = server.stats()
    return LevelResult(
        concurrency=concurrency,
        requests=n_requests,
        wall_s=wall_s,
        requests_per_s=n_requests / wall_s,
        server_requests=stats["total_requests"],
        duplicates=stats["duplicate_requests"],
        server_peak=stats["peak_concurrency"],
        client_retries=client.usage_summary()["retries"],
    )


def format_table(results: list[LevelResult]) -> str:
    base = next((r.requests_per_s for r in results if r.concurrency == 1), results[0].requests_per_s)
    lines = [
        "| concurrency | requests | wall s | req/s | speed-up vs 1 | duplicates at server | server peak |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r.concurrency} | {r.requests} | {r.wall_s:.2f} | {r.requests_per_s:.1f} | "
            f"{r.requests_per_s / base:.1f}x | {r.duplicates} | {r.server_peak} |"
        )
    return "\n".join(lines)


def goal_met(results: list[LevelResult]) -> bool:
    by_level = {r.concurrency: r for r in results}
    if 1 not in by_level or GOAL_CONCURRENCY not in by_level:
        return True  # the goal is only defined when both levels were measured
    speedup = by_level[GOAL_CONCURRENCY].requests_per_s / by_level[1].requests_per_s
    clean = all(r.duplicates == 0 and r.server_requests == r.requests for r in results)
    return speedup >= GOAL_SPEEDUP and clean


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=128, help="distinct requests per level")
    parser.add_argument("--latency", type=float, default=0.2, help="server latency per request, seconds")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--in-process", action="store_true", help="serve from threads of this process")
    parser.add_argument("--json", action="store_true", help="also print the raw results as JSON")
    args = parser.parse_args(argv)
    server: ServerHandle = (
        MockChatServer(latency_s=args.latency) if args.in_process else ServerProcess(args.latency)
    )
    if isinstance(server, MockChatServer):
        server.start()
    where = "in this process" if args.in_process else "in a child process"
    print(f"mock server {server.base_url} ({where}), latency {args.latency * 1000:.0f} ms, ", end="")
    print(f"{args.requests} distinct requests per level")
    try:
        results = [run_level(server, level, args.requests) for level in args.concurrency]
    finally:
        server.stop() if isinstance(server, MockChatServer) else server.close()
    print(format_table(results))
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=1))
    ok = goal_met(results)
    verdict = "met" if ok else "MISSED"
    print(f"goal (>= {GOAL_SPEEDUP:.0f}x at concurrency {GOAL_CONCURRENCY}, zero duplicates): {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
