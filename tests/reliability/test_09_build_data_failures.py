"""Item 9: ``build_data.py`` says why a backend failed.

Failures are reported by class (auth, server_error, connection, malformed_reply, ...) with counts and the
last message of each (API key redacted); a 401/403 stops the build at once; SIGTERM keeps the answers of
requests in flight, as Ctrl-C does; a build that finished only part of its items exits non-zero and says
how to resume.
"""

from __future__ import annotations

import signal
import socket
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from PIL import Image

from lvlm.construction.backends import prompts
from lvlm.construction.pipeline import build as build_module
from lvlm.construction.pipeline.build import build_datasets
from lvlm.errors import LvlmError
from tests.helpers.cli import run_cli
from tests.helpers.openai_server import Fault, MockChatServer, default_responder
from tests.helpers.paths import REPO_ROOT
from tests.helpers.process import finish, start_cli, wait_until

KEY_ENV = "LVLM_RELIABILITY_FAKE_KEY"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-reliability-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for index in range(4):
        Image.new("RGB", (32, 24), (index * 50, 90, 120)).save(folder / f"img_{index}.png")
    return folder


def overrides(base_url: str, images: Path, root: Path, **extra: Any) -> list[str]:
    settings = {
        "construction.images_dir": images, "construction.sample_size": 4, "construction.base_url": base_url,
        "construction.model": "gpt-4-mock", "construction.caption_model": "gpt-4v-mock",
        "construction.api_key_env": KEY_ENV, "construction.cache_dir": root / "cache",
        "construction.concurrency": 2, "construction.timeout_s": 2.0, "construction.max_retries": 2,
        "progress": "false", **extra,
    }  # fmt: skip
    return ["construction=openai", f"paths.root={root}",
            "+construction.client={backoff_base_s: 0.01, backoff_max_s: 0.02, retry_seed: 0}",
            *(f"{key}={value}" for key, value in settings.items())]  # fmt: skip


def compose_cfg(args: list[str]):
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("build_data", overrides=args)


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"  # nothing listens there any more


def test_unauthorized_stops_at_once_and_redacts_the_key(tmp_path, images, api_key):
    server = MockChatServer(responder=lambda body: Fault("unauthorized", message=f"bad key {api_key}"))
    with server as url, pytest.raises(LvlmError) as info:
        build_datasets(compose_cfg(overrides(url, images, tmp_path)))
    message = str(info.value)
    assert "401" in message and "bad key [REDACTED]" in message and api_key not in message
    assert f"${KEY_ENV}" in message and "\n" not in message
    assert server.total_requests <= 2  # the items already in flight, nothing scheduled after the first 401


@pytest.mark.parametrize(
    ("fault", "kind", "text"),
    [("server_error", "server_error", "mock internal error"),
     ("malformed_json", "malformed_reply", "malformed reply"),
     ("bad_request", "rejected", "bad request"),
     ("dead", "connection", "connection error")],
)  # fmt: skip
def test_failure_classes_are_named_with_counts_and_last_message(tmp_path, images, api_key, fault, kind, text):
    server = MockChatServer(responder=lambda body: Fault(fault if fault != "dead" else "server_error"))
    with server as url:
        base_url = dead_url() if fault == "dead" else url
        with pytest.raises(LvlmError) as info:
            build_datasets(compose_cfg(overrides(base_url, images, tmp_path)))
    message = str(info.value)
    assert "no item survived" in message and "caption:not_finished" in message
    assert f"backend failures: caption: {kind} ×4 (last: " in message and text in message


def _good(body: dict) -> str:
    system = body["messages"][0]["content"]
    if system == prompts.QA_SYSTEM:
        return "<question>What is shown?</question>\n<answer>A plain coloured picture.</answer>"
    return default_responder(body)


def test_partial_build_exits_non_zero_and_says_how_to_resume(tmp_path, images, api_key):
    from tests.construction.test_openai_e2e import responder as compliant_responder

    lock, failed = threading.Lock(), []

    def responder(body: dict) -> str | Fault:  # the plain answers of two items fail (a 500, for good)
        if body["messages"][0]["content"] == prompts.ANSWER_SYSTEM:
            with lock:
                if len(failed) < 2:
                    failed.append(body)
                    return Fault("server_error", message="answer backend overloaded")
        return compliant_responder(body)

    server = MockChatServer(responder=responder)
    with server as url:
        args = overrides(url, images, tmp_path, **{"construction.max_retries": 0})
        result = run_cli("build_data.py", *args, "datasets=[nofoit]", cwd=tmp_path, timeout=300)
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "answer: server_error ×2 (last: " in result.stderr and "answer backend overloaded" in result.stderr
    assert "2 item(s) did not finish; rerun the same command to resume" in result.stderr
    assert api_key not in result.stdout + result.stderr


class SigtermAtNewItem:
    """Wraps a generator; sends this process SIGTERM when item ``after + 1`` starts its question-answer
    stage, then carries on like the item in flight it is."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after, self.started = inner, after, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def question_answer(self, item: Any, caption: str, instruction: Any, feedback: Any) -> Any:
        if feedback is None:
            self.started += 1
            if self.started == self.after + 1:
                signal.raise_signal(signal.SIGTERM)
        return await self.inner.question_answer(item, caption, instruction, feedback)


class _Unhandled(Exception):
    pass


def test_sigterm_keeps_the_answers_in_flight(tmp_path, images, api_key, monkeypatch):
    def unhandled(signum: int, frame: object) -> None:  # what SIGTERM does when the build ignores it
        raise _Unhandled("SIGTERM reached the default handler")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        server = MockChatServer(responder=_good, latency_s=0.05)
        real = build_module.make_generator
        monkeypatch.setattr(build_module, "make_generator", lambda cfg: SigtermAtNewItem(real(cfg), 1))
        with server as url, pytest.raises(KeyboardInterrupt) as info:
            build_datasets(compose_cfg([*overrides(url, images, tmp_path), "max_format_retries=0"]))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert getattr(info.value, "signum", None) == signal.SIGTERM
    stages = tmp_path / "data" / "stages"
    finished = (stages / "question_answer.jsonl").read_text().splitlines()
    assert 2 <= len(finished) < 4  # the items in flight finished and were recorded; the rest never started
    qa_requests = [request for request in server.requests if request.model == "gpt-4-mock"]
    assert len(qa_requests) == len(finished)  # one try per item (max_format_retries=0): none thrown away


def test_build_data_py_sigterm_exits_143_keeping_finished_records(tmp_path, images, api_key):
    server = MockChatServer(responder=_good, latency_s=0.5)
    with server as url:
        args = overrides(url, images, tmp_path, **{"construction.sample_size": 4})
        proc = start_cli("build_data.py", *args, cwd=tmp_path, log_dir=tmp_path / "log")
        captions = tmp_path / "data" / "stages" / "caption.jsonl"
        wait_until(lambda: captions.exists() and captions.read_text().count("\n") >= 1, proc, 300,
                   "the first caption record")  # fmt: skip
        proc.send_signal(signal.SIGTERM)
        code = finish(proc, timeout=60)
    stderr = (tmp_path / "log" / "stderr.txt").read_text()
    assert code == 143, stderr[-2000:]
    assert "Traceback" not in stderr and "rerun the same command to resume" in stderr
    assert len(captions.read_text().splitlines()) >= 2  # the request in flight was kept
