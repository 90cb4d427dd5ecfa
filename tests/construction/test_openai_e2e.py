"""End to end: the ``openai`` construction backend against the loopback mock server (real HTTP protocol).

The responder plays GPT-4V / GPT-4: it captions each image, writes a question with an answer that follows
the requested format instruction (via ``apply_format``) but breaks it on some first attempts, so
regeneration runs, and answers plainly when asked without a format. Tests inject 429s, 500s, timeouts,
malformed JSON, a refusal and an empty reply; interrupt a build mid-stage with a real SIGINT and resume it
(no repeated server request, identical datasets); retry items that failed at the backend on the next run;
abort after repeated backend failures; check that the client cache alone avoids all calls on a rebuild;
count a corrupt image; drive ``build_data.py`` itself; and scan every written file for the (fake) API key.
The real COCO 2014 images from ``../shared/data`` are used when present, otherwise generated PNGs.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import uuid
from pathlib import Path
from typing import Any, ClassVar

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig
from PIL import Image

from lvlm.construction.backends import prompts
from lvlm.construction.catalogue.checkers import check
from lvlm.construction.catalogue.formatters import apply_format
from lvlm.construction.catalogue.instructions import build_library, load_library
from lvlm.construction.pipeline import build as build_module
from lvlm.construction.pipeline.build import build_datasets
from lvlm.errors import LvlmError
from tests.helpers.cli import run_cli
from tests.helpers.openai_server import Fault, MockChatServer
from tests.helpers.paths import REPO_ROOT, SHARED_DATA

KEY_ENV = "LVLM_E2E_FAKE_OPENAI_KEY"
COCO_DIR = SHARED_DATA / "coco_images" / "llava_bench_coco_val2014"
LIBRARY = sorted(build_library(n=100, seed=0), key=lambda instr: -len(instr.text))
NAMES = ("fovit", "nofovit", "foit", "nofoit")
QUESTIONS = (
    "What is the main subject of this picture?",
    "What is happening in the scene?",
    "Which colours stand out in the image?",
    "Where does this scene take place?",
)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(part.get("text", "") for part in content if part.get("type") == "text")


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def failing_answer(instruction: Any, question: str) -> str:
    candidates = ("x", "NO, NOT THIS ONE.", "Short line. " * 40, "word, " * 300 + "end", '{"a": 1}')
    return next(text for text in candidates if not check(instruction, text, request=question).ok)


def responder(body: dict) -> str | Fault:
    """A deterministic stand-in for GPT-4V / GPT-4: the reply depends only on the request content."""
    messages = body["messages"]
    system, user = messages[0]["content"], messages[1]["content"]
    if system == prompts.CAPTION_SYSTEM:
        image_url = next(part for part in user if part["type"] == "image_url")["image_url"]["url"]
        ref = _digest(image_url)[:8]
        return (
            f"A photograph (ref {ref}) of people near a red bus on a sunny street. Two trees frame the view."
        )
    digest = _digest(messages)
    if system == prompts.QA_SYSTEM:
        instruction = next(instr for instr in LIBRARY if instr.text in user)
        question = QUESTIONS[int(digest[:4], 16) % len(QUESTIONS)]
        first_attempt = len(messages) == 2
        if first_attempt and int(digest[4:8], 16) % 3 == 0:
            answer = failing_answer(instruction, question)
        else:
            facts = ["People stand near a red bus.", "The street is sunny.", "Two trees frame the view."]
            answer = apply_format(instruction, facts, random.Random(digest), request=question)
        return f"<question>{question}</question>\n<answer>{answer}</answer>"
    if system == prompts.ANSWER_SYSTEM:
        return "Several people wait beside a red bus on a bright street, with two trees on either side."
    return Fault("bad_request", message="unexpected system prompt")


@pytest.fixture
def images(tmp_path: Path) -> Path:
    """Real COCO 2014 val images when ../shared/data exists, else small generated PNGs."""
    if COCO_DIR.is_dir():
        return COCO_DIR
    folder = tmp_path / "generated_images"
    folder.mkdir()
    for index in range(12):
        colour = (index * 20 % 256, 90, 200 - index * 10)
        Image.new("RGB", (48, 32), colour).save(folder / f"img_{index:03d}.png")
    return folder


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = f"sk-lvlm-e2e-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_ENV, key)
    return key


def openai_overrides(base_url: str, images: Path, cache: Path, sample_size: int) -> list[str]:
    return [
        "construction=openai",
        f"construction.images_dir={images}",
        f"construction.sample_size={sample_size}",
        f"construction.base_url={base_url}",
        "construction.model=gpt-4-mock",
        "construction.caption_model=gpt-4v-mock",
        f"construction.api_key_env={KEY_ENV}",
        f"construction.cache_dir={cache}",
        "construction.concurrency=4",
        "construction.timeout_s=1.0",
        "construction.max_retries=4",
        "construction.image_max_side=256",
        "+construction.client={backoff_base_s: 0.01, backoff_max_s: 0.05, retry_seed: 0}",
        "progress=false",
    ]


def compose_cfg(root: Path, overrides: list[str]) -> DictConfig:
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("build_data", overrides=[f"paths.root={root}", *overrides])


def load(directory: Path, name: str) -> Any:
    path = directory / name
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return json.loads(path.read_text(encoding="utf-8"))


def assert_key_nowhere(root: Path, key: str) -> int:
    """No file under ``root`` contains the key; returns how many files were scanned."""
    scanned = 0
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert key.encode() not in path.read_bytes(), f"API key leaked into {path}"
            scanned += 1
    return scanned


def assert_fo_answers_comply(directory: Path) -> None:
    library = {instr.id: instr for instr in load_library(directory / "format_instructions.json")}
    meta = {m["id"]: m for m in load(directory, "meta.jsonl")}
    for record in load(directory, "train.json"):
        instruction = library[meta[record["id"]]["instruction_id"]]
        request = record["conversations"][0]["value"].split("\n", 1)[1]
        question = request[len(instruction.text) + 1 :]
        assert check(instruction, record["conversations"][1]["value"], request=question).ok


def test_build_with_faults_regeneration_and_skips(tmp_path: Path, images: Path, api_key: str) -> None:
    faults = [
        Fault("rate_limit", retry_after_s=0.0), "server_error", "timeout", "malformed_json", "bad_schema",
        "refusal", "empty_content", Fault("rate_limit", retry_after_s=0.0), "server_error",
    ]  # fmt: skip
    server = MockChatServer(responder=responder, faults=faults, timeout_sleep_s=1.5)
    with server as url:
        paths = build_datasets(compose_cfg(tmp_path, openai_overrides(url, images, tmp_path / "cache", 12)))
    outcomes = [request.outcome for request in server.requests]
    assert all(kind in outcomes for kind in ("rate_limit", "server_error", "timeout", "malformed_json"))
    assert all(request.has_authorization for request in server.requests)
    card = load(paths["fovit"], "card.json")
    skipped = {key: value for key, value in card["skipped"].items() if key != "total"}
    assert sum(v for k, v in skipped.items() if k.endswith(":refusal")) == 1
    assert sum(v for k, v in skipped.items() if ":empty_" in k) == 1
    assert card["num_samples"] == 12 - card["skipped"]["total"] == 10
    compliance = card["compliance"]
    assert compliance["regenerated"] >= 1 and compliance["first_try_rate"] < compliance["after_retries_rate"]
    assert card["generator"]["models"] == {
        "caption": "gpt-4v-mock", "question_answer": "gpt-4-mock", "answer": "gpt-4-mock",
    }  # fmt: skip
    assert card["generator"]["prompts"]["qa_user"] == prompts.QA_USER
    usage = card["usage"]
    assert usage["retries"] >= 6 and usage["prompt_tokens"] > 0 and usage["cost_usd"] > 0
    for name in NAMES:
        assert len(load(paths[name], "train.json")) == 10
    fovit, nofovit = load(paths["fovit"], "train.json"), load(paths["nofovit"], "train.json")
    assert [r["image"] for r in fovit] == [r["image"] for r in nofovit]
    assert all((paths["fovit"] / r["image"]).resolve().parent == images.resolve() for r in fovit)
    assert_fo_answers_comply(paths["fovit"])
    assert "Caption: A photograph (ref " in load(paths["foit"], "train.json")[0]["conversations"][0]["value"]
    assert assert_key_nowhere(tmp_path, api_key) > 20


class CtrlCAtNewItem:
    """Wraps a generator; sends this process SIGINT (a real Ctrl-C) when item ``after + 1`` starts its
    question-answer stage, then carries on like the item in flight it is."""

    def __init__(self, inner: Any, after: int) -> None:
        self.inner, self.after, self.started = inner, after, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def question_answer(self, item: Any, caption: str, instruction: Any, feedback: Any) -> Any:
        if feedback is None:
            self.started += 1
            if self.started == self.after + 1:
                signal.raise_signal(signal.SIGINT)
        return await self.inner.question_answer(item, caption, instruction, feedback)


def test_kill_and_resume_repeats_no_request_and_matches(
    tmp_path: Path, images: Path, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = 8
    server = MockChatServer(responder=responder)
    with server as url:
        reference = build_datasets(
            compose_cfg(tmp_path / "ref", openai_overrides(url, images, tmp_path / "c0", size))
        )
        server.reset_log()
        resumed_cfg = compose_cfg(tmp_path / "run", openai_overrides(url, images, tmp_path / "c1", size))
        real_make = build_module.make_generator
        monkeypatch.setattr(build_module, "make_generator", lambda cfg: CtrlCAtNewItem(real_make(cfg), 3))
        with pytest.raises(KeyboardInterrupt):
            build_datasets(resumed_cfg)
        first_run = {request.key for request in server.requests if request.outcome == "ok"}
        stages = tmp_path / "run" / "data" / "stages"
        finished = [json.loads(line) for line in (stages / "question_answer.jsonl").read_text().splitlines()]
        assert 3 < len(finished) < size  # the items in flight at Ctrl-C were finished and recorded
        server.reset_log()
        monkeypatch.setattr(build_module, "make_generator", real_make)
        fresh_cache = openai_overrides(
            url, images, tmp_path / "c2", size
        )  # so repeats would reach the server
        resumed = build_datasets(compose_cfg(tmp_path / "run", fresh_cache))
        second_run = server.requests
    assert not first_run & {request.key for request in second_run}
    assert server.duplicate_requests == 0
    assert not [request for request in second_run if request.model == "gpt-4v-mock"]  # captions were done
    for name in NAMES:
        for file in ("train.json", "meta.jsonl"):
            assert (resumed[name] / file).read_text() == (reference[name] / file).read_text()
    assert load(resumed["fovit"], "card.json")["usage"]["runs"] == 2


def test_rebuild_from_request_cache_makes_no_call(tmp_path: Path, images: Path, api_key: str) -> None:
    server = MockChatServer(responder=responder)
    with server as url:
        cfg = compose_cfg(tmp_path, openai_overrides(url, images, tmp_path / "cache", 4))
        first = build_datasets(cfg)
        before = (first["nofoit"] / "train.json").read_text()
        shutil.rmtree(tmp_path / "data")
        server.reset_log()
        again = build_datasets(cfg)
        assert server.total_requests == 0
    assert (again["nofoit"] / "train.json").read_text() == before
    assert load(again["nofoit"], "card.json")["usage"]["cache_hits"] > 0


def test_corrupt_image_is_counted_without_a_request(tmp_path: Path, images: Path, api_key: str) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for source in sorted(images.iterdir())[:3]:
        shutil.copy(source, folder / source.name)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    server = MockChatServer(responder=responder)
    with server as url:
        paths = build_datasets(compose_cfg(tmp_path, openai_overrides(url, folder, tmp_path / "cache", 10)))
        captions = [r for r in server.requests if r.model == "gpt-4v-mock"]
    card = load(paths["fovit"], "card.json")
    assert card["skipped"] == {"total": 1, "caption:corrupt_image": 1}
    assert card["num_samples"] == 3 and len(captions) == 3
    assert card["sampling"] == {
        "images_available": 4,
        "sample_size_requested": 10,
        "sampled": 4,
        "completed": 3,
    }


def test_cli_against_mock_server_leaks_no_key(tmp_path: Path, images: Path, api_key: str) -> None:
    server = MockChatServer(responder=responder)
    with server as url:
        overrides = openai_overrides(url, images, tmp_path / ".cache" / "chat", 4)
        env_key = os.environ[KEY_ENV]
        result = run_cli("build_data.py", f"paths.root={tmp_path}", *overrides, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "fovit" in result.stdout and "usage:" in result.stdout
    assert env_key not in result.stdout + result.stderr
    assert (tmp_path / "data" / "nofovit" / "card.md").is_file()
    assert assert_key_nowhere(tmp_path, env_key) > 10


def test_backend_failures_are_retried_by_the_next_run(tmp_path: Path, images: Path, api_key: str) -> None:
    refused_once: set[str] = set()

    def flaky(body: dict) -> str | Fault:  # the answer stage of the first two items fails for good, once
        user = _text(body["messages"][-1]["content"])
        if body["messages"][0]["content"] == prompts.ANSWER_SYSTEM and len(refused_once) < 2:
            refused_once.add(_digest(user))
            return Fault("bad_request", message="mock: cannot serve this one now")
        return responder(body)

    server = MockChatServer(responder=flaky)
    with server as url:
        cfg = compose_cfg(tmp_path, openai_overrides(url, images, tmp_path / "cache", 6))
        first = load(build_datasets(cfg)["fovit"], "card.json")
        first_keys = {request.key for request in server.requests if request.outcome == "ok"}
        server.reset_log()
        second = load(build_datasets(cfg)["fovit"], "card.json")
        second_requests = server.requests
    assert first["skipped"] == {"total": 2, "answer:not_finished": 2} and first["num_samples"] == 4
    assert first["last_run"]["answer"]["backend_failures"] == {"rejected": 2}
    assert "cannot serve this one now" in first["last_run"]["answer"]["last_failure"]["rejected"]
    assert second["skipped"] == {"total": 0} and second["num_samples"] == 6
    assert len(second_requests) == 2 and not first_keys & {request.key for request in second_requests}


def test_repeated_backend_failures_abort_with_one_line(tmp_path: Path, images: Path, api_key: str) -> None:
    server = MockChatServer(responder=lambda body: Fault("server_error"))  # (a 401 stops at the first)
    overrides = [*openai_overrides("", images, tmp_path / "cache", 8), "max_consecutive_failures=3",
                 "construction.max_retries=0"]  # fmt: skip
    with server as url:
        overrides[3] = f"construction.base_url={url}"
        with pytest.raises(LvlmError, match=r"stage 'caption': 3 backend failures in a row \(last: .*500"):
            build_datasets(compose_cfg(tmp_path, overrides))
    assert not (tmp_path / "data" / "stages" / "caption.jsonl").exists()


class FakeHFClient:
    """Stands in for ``HFChatClient`` (no model weights offline); answers like the mock server's responder."""

    name = "hf"
    built: ClassVar[list[FakeHFClient]] = []

    def __init__(self, model: str, **settings: Any) -> None:
        self.model, self.settings, self.calls = model, settings, 0
        FakeHFClient.built.append(self)

    async def chat(
        self, messages: list[dict], *, temperature: float = 0.0, max_tokens: int = 512, seed: Any = None
    ):
        from lvlm.construction.backends.clients import ChatResult

        self.calls += 1
        return ChatResult(str(responder({"messages": messages})), 10, 5, False, "stop")

    def usage_summary(self) -> dict:
        return {"backend": "hf", "model": self.model, "requests": self.calls}

    async def aclose(self) -> None:
        return None


def test_hf_backend_uses_one_local_client_with_its_settings(
    tmp_path: Path, images: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lvlm.construction.backends import clients

    FakeHFClient.built.clear()
    monkeypatch.setattr(clients, "build_chat_client", lambda name, **kw: {"hf": FakeHFClient}[name](**kw))
    overrides = [
        "construction=hf", f"construction.images_dir={images}", "construction.sample_size=3",
        "construction.model=/models/local-vlm", "construction.client.dtype=bfloat16", "progress=false",
    ]  # fmt: skip
    paths = build_datasets(compose_cfg(tmp_path, overrides))
    [client] = FakeHFClient.built
    assert client.model == "/models/local-vlm" and client.settings["dtype"] == "bfloat16"
    assert client.settings["cache_dir"] == str(tmp_path / ".cache" / "chat_requests")
    card = load(paths["foit"], "card.json")
    assert card["num_samples"] == 3 and card["generator"]["backend"] == "hf"
    assert card["usage"]["requests"] == client.calls >= 9
    assert_fo_answers_comply(paths["fovit"])
