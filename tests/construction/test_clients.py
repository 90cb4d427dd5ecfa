"""Tests for the dataset-construction chat clients, the loopback mock server and image parts.

Everything runs on 127.0.0.1 against ``MockChatServer`` (real HTTP, real ``openai`` client) or on tiny
random transformers models built and saved in a temporary directory, then loaded by path.
"""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import json
import logging
import subprocess
import sys
import time
import traceback
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from lvlm.construction.backends.clients import CHAT_CLIENTS, build_chat_client, image_part
from lvlm.construction.backends.clients.base import ChatClient, ChatRequestError
from lvlm.construction.backends.clients.images import image_from_data_url
from lvlm.construction.backends.clients.openai_client import OpenAIChatClient
from lvlm.construction.backends.clients.ratelimit import Backoff
from lvlm.errors import ConfigError, DataError, LvlmError, UnknownNameError
from tests.helpers.openai_server import Fault, MockChatServer
from tests.helpers.paths import REPO_ROOT, SHARED_DATA

KEY_ENV = "LVLM_TEST_CHAT_KEY"
FAKE_KEY = "sk-test-DO-NOT-LEAK-5f2c9e1a7b"


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    return FAKE_KEY


def make_client(base_url: str, **overrides: object) -> OpenAIChatClient:
    settings = {"api_key_env": KEY_ENV, "concurrency": 8, "max_retries": 6, "timeout_s": 5.0}
    settings.update(backoff_base_s=0.01, backoff_max_s=0.05, retry_seed=0)
    settings.update(overrides)
    return OpenAIChatClient("gpt-mock", base_url=base_url, **settings)


def ask(text: str) -> list[dict]:
    return [{"role": "system", "content": "be brief"}, {"role": "user", "content": text}]


async def run_and_close(client: OpenAIChatClient, *prompts: str, **params: object) -> list:
    try:
        return await asyncio.gather(*(client.chat(ask(p), **params) for p in prompts))
    finally:
        await client.aclose()


# ----- OpenAI-compatible client against the mock server ---------------------------------------------------
def test_success_path_counts_tokens_and_cost(api_key: str) -> None:
    server = MockChatServer(responder=lambda body: "alpha beta gamma")
    with server as url:
        client = make_client(url, price_per_1k_prompt=2.0, price_per_1k_completion=4.0)
        [result] = asyncio.run(run_and_close(client, "one two three"))
    assert (result.text, result.cached, result.finish_reason) == ("alpha beta gamma", False, "stop")
    assert (result.prompt_tokens, result.completion_tokens) == (5, 3)  # "be brief" + "one two three"
    usage = client.usage_summary()
    assert (usage["requests"], usage["api_calls"], usage["retries"]) == (1, 1, 0)
    assert usage["cost_usd"] == pytest.approx((5 * 2.0 + 3 * 4.0) / 1000)
    [logged] = server.requests
    assert logged.model == "gpt-mock" and logged.has_authorization and logged.outcome == "ok"


def test_transient_faults_are_retried_and_counted(api_key: str) -> None:
    faults = ["rate_limit", "server_error", "malformed_json", "bad_schema", "timeout"]
    server = MockChatServer(faults=faults, timeout_sleep_s=2.0)
    with server as url:
        client = make_client(url, timeout_s=0.4)
        [result] = asyncio.run(run_and_close(client, "hello there"))
    assert result.text == "mock reply to: hello there"
    assert [r.outcome for r in server.requests] == [*faults, "ok"]
    usage = client.usage_summary()
    assert (usage["retries"], usage["api_calls"], usage["failures"]) == (5, 6, 0)


def test_retry_after_header_is_honoured(api_key: str) -> None:
    server = MockChatServer(faults=[Fault("rate_limit", retry_after_s=0.4)])
    with server as url:
        client = make_client(url, backoff_base_s=0.001, backoff_max_s=1.0)
        asyncio.run(run_and_close(client, "wait for me"))
    first, second = server.requests
    assert second.arrived_s - first.arrived_s >= 0.38


def test_permanent_failure_raises_after_max_retries(api_key: str) -> None:
    def responder(body: dict) -> str | Fault:
        return Fault("server_error") if "doomed" in json.dumps(body) else "fine"

    server = MockChatServer(responder=responder)
    with server as url:
        client = make_client(url, max_retries=2)
        with pytest.raises(ChatRequestError, match=r"failed after 3 attempts: HTTP 500.*fix:"):
            asyncio.run(run_and_close(client, "doomed request"))
    assert server.total_requests == 3
    assert client.usage_summary()["failures"] == 1 and client.usage_summary()["retries"] == 2


def test_non_retryable_error_fails_at_once(api_key: str) -> None:
    server = MockChatServer(faults=[Fault("bad_request", message="unsupported parameter")])
    with server as url:
        client = make_client(url)
        with pytest.raises(
            ChatRequestError, match=r"HTTP 400.*unsupported parameter.*fix: the server rejected"
        ):
            asyncio.run(run_and_close(client, "anything"))
    assert server.total_requests == 1 and client.usage_summary()["retries"] == 0


def test_cache_hit_on_rerun_makes_no_request(api_key: str, tmp_path: Path) -> None:
    prompts = [f"question {i}" for i in range(5)]
    server = MockChatServer()
    with server as url:
        first = asyncio.run(run_and_close(make_client(url, cache_dir=tmp_path), *prompts))
        assert server.total_requests == 5
        rerun_client = make_client(url, cache_dir=tmp_path)
        second = asyncio.run(run_and_close(rerun_client, *prompts))
        assert server.total_requests == 5  # nothing new reached the server
        asyncio.run(run_and_close(make_client(url, cache_dir=tmp_path), prompts[0], temperature=0.7))
        assert server.total_requests == 6  # a different temperature is a different request
    assert [r.text for r in first] == [r.text for r in second]
    assert all(r.cached for r in second) and not any(r.cached for r in first)
    usage = rerun_client.usage_summary()
    assert (usage["cache_hits"], usage["api_calls"], usage["prompt_tokens"]) == (5, 0, 0)
    assert len(list(tmp_path.rglob("*.json"))) == 6


def test_refusals_and_empty_replies_are_returned_but_not_cached(api_key: str, tmp_path: Path) -> None:
    server = MockChatServer(faults=["refusal", "empty_content"])
    with server as url:
        client = make_client(url, cache_dir=tmp_path)
        refused, empty = asyncio.run(run_and_close(client, "first", "second"))
        again = asyncio.run(run_and_close(make_client(url, cache_dir=tmp_path), "first", "second"))
    assert {(refused.finish_reason, refused.text), (empty.finish_reason, empty.text)} == {
        ("refusal", ""),
        ("stop", ""),
    }
    assert (client.usage_summary()["refusals"], client.usage_summary()["empty_responses"]) == (1, 1)
    assert server.total_requests == 4 and not any(r.cached for r in again)


def test_corrupt_cache_entry_is_counted_and_replaced(api_key: str, tmp_path: Path) -> None:
    with MockChatServer() as url:
        asyncio.run(run_and_close(make_client(url, cache_dir=tmp_path), "cache me"))
        [entry] = list(tmp_path.rglob("*.json"))
        entry.write_text("{not json", encoding="utf-8")
        client = make_client(url, cache_dir=tmp_path)
        [result] = asyncio.run(run_and_close(client, "cache me"))
    assert not result.cached and client.usage_summary()["corrupt_cache_entries"] == 1
    assert json.loads(entry.read_text(encoding="utf-8"))["reply"]["text"] == result.text


def test_identical_concurrent_requests_share_one_call(api_key: str) -> None:
    server = MockChatServer(latency_s=0.2)
    with server as url:
        client = make_client(url)
        results = asyncio.run(run_and_close(client, *["same prompt"] * 10, "other prompt"))
    assert server.total_requests == 2 and server.duplicate_requests == 0
    assert len({r.text for r in results[:10]}) == 1
    assert client.usage_summary()["deduplicated"] == 9


def test_requests_per_minute_limiter_spaces_requests(api_key: str) -> None:
    server = MockChatServer()
    with server as url:
        client = make_client(url, requests_per_minute=600, concurrency=8)  # one request per 0.1 s
        asyncio.run(run_and_close(client, *[f"paced {i}" for i in range(5)]))
    arrivals = sorted(r.arrived_s for r in server.requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) == 4 and min(gaps) >= 0.05 and arrivals[-1] - arrivals[0] >= 0.35, gaps


def test_mock_server_serves_requests_in_parallel(api_key: str) -> None:
    server = MockChatServer(latency_s=0.2)
    with server as url:
        client = make_client(url, concurrency=32)
        started = time.perf_counter()
        asyncio.run(run_and_close(client, *[f"parallel {i}" for i in range(32)]))
        elapsed = time.perf_counter() - started
    assert server.peak_concurrency >= 24 and elapsed < 1.5, (server.peak_concurrency, elapsed)


def test_one_client_serves_successive_event_loops(api_key: str) -> None:
    server = MockChatServer(latency_s=0.02)
    with server as url:
        client = make_client(url, concurrency=2, requests_per_minute=6000, rpm_burst=2)

        async def batch(tag: str) -> list:
            return await asyncio.gather(*(client.chat(ask(f"{tag} {i}")) for i in range(5)))

        first, second = asyncio.run(batch("a")), asyncio.run(batch("b"))
        asyncio.run(client.aclose())
    assert isinstance(client, ChatClient)
    assert len(first) == len(second) == 5 and server.total_requests == 10
    assert client.usage_summary()["failures"] == 0


def test_mock_server_runs_as_a_process() -> None:
    command = [sys.executable, "-m", "tests.helpers.openai_server", "--latency", "0"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT)
    try:
        base_url = process.stdout.readline().strip() if process.stdout else ""
        assert base_url.startswith("http://127.0.0.1:") and base_url.endswith("/v1")
        root = base_url.removesuffix("/v1")
        request = urllib.request.Request(
            base_url + "/chat/completions",
            data=json.dumps({"model": "m", "messages": [{"role": "user", "content": "hi"}]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            reply = json.loads(response.read())
        with urllib.request.urlopen(root + "/mock/stats", timeout=10) as response:
            stats = json.loads(response.read())
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert (
        reply["choices"][0]["message"]["content"] == "mock reply to: hi"
        and reply["usage"]["prompt_tokens"] == 1
    )
    assert (
        stats["total_requests"] == 1 and stats["duplicate_requests"] == 0 and stats["outcomes"] == {"ok": 1}
    )


def test_api_key_never_leaks(api_key: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    def responder(body: dict) -> str | Fault:
        text = json.dumps(body)
        if "echo-key-500" in text:  # a server that quotes the key back in a retryable error
            return Fault("server_error", message=f"bad key {FAKE_KEY}")
        if "echo-key-400" in text:
            return Fault("bad_request", message=f"Incorrect API key provided: {FAKE_KEY}")
        return "ok reply"

    caplog.set_level(logging.DEBUG)
    server = MockChatServer(responder=responder)
    with server as url:
        client = make_client(url, cache_dir=tmp_path, max_retries=1)
        asyncio.run(run_and_close(client, "normal one", "normal two"))
        errors = []
        for prompt in ("echo-key-500", "echo-key-400"):
            client = make_client(url, cache_dir=tmp_path, max_retries=1)
            errors.append(_raised(lambda c=client, p=prompt: asyncio.run(run_and_close(c, p))))
    texts = [repr(client), json.dumps(client.usage_summary()), caplog.text]
    texts += [r.getMessage() for r in caplog.records]
    texts += ["".join(traceback.format_exception(e)) + repr(e) for e in errors]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in tmp_path.rglob("*") if p.is_file()]
    assert all(FAKE_KEY not in text for text in texts)
    assert all(isinstance(e, ChatRequestError) and "[REDACTED]" in str(e) for e in errors)
    assert "[REDACTED]" in caplog.text  # the retried 500 was logged, redacted
    assert all(r.has_authorization for r in server.requests)


def _raised(action: object) -> BaseException:
    try:
        action()  # type: ignore[operator]
    except Exception as exc:
        return exc
    raise AssertionError("expected an exception")


def test_missing_key_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(LvlmError, match=f"environment variable {KEY_ENV} is not set"):
        OpenAIChatClient("gpt-mock", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV)


def test_registry_and_settings_errors(api_key: str) -> None:
    assert CHAT_CLIENTS.names() == ["hf", "openai"]
    with pytest.raises(UnknownNameError, match="valid chat client names: hf, openai"):
        build_chat_client("anthropic")
    with pytest.raises(ConfigError, match=r"unknown setting.*concurency"):
        build_chat_client("openai", model="m", concurency=3)
    client = build_chat_client("openai", model="m", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV)
    assert client.name == "openai" and "sk-" not in repr(client)


def test_backoff_is_bounded_full_jitter() -> None:
    import random

    backoff, rng = Backoff(base_s=0.5, max_s=4.0), random.Random(1)
    delays = [backoff.delay(attempt, rng) for attempt in range(8) for _ in range(50)]
    assert min(delays) >= 0 and max(delays) <= 4.0 and len(set(delays)) > 300
    assert backoff.delay(0, rng, retry_after_s=2.5) >= 2.5 and backoff.delay(0, rng, retry_after_s=99) == 4.0


# ----- images ---------------------------------------------------------------------------------------------
def _gradient(width: int, height: int) -> Image.Image:
    image = Image.new("RGB", (width, height))
    image.putdata([(x * 4 % 256, y * 5 % 256, (x + y) % 256) for y in range(height) for x in range(width)])
    return image


def test_image_part_round_trips_a_png(tmp_path: Path) -> None:
    path = tmp_path / "gradient.png"
    _gradient(64, 48).save(path)
    part = image_part(path)
    assert part["type"] == "image_url" and part["image_url"]["url"].startswith("data:image/png;base64,")
    decoded = image_from_data_url(part["image_url"]["url"])
    assert decoded.size == (64, 48) and list(decoded.getdata()) == list(_gradient(64, 48).getdata())
    assert image_from_data_url(image_part(path, max_side=16)["image_url"]["url"]).size == (16, 12)


def test_image_part_on_a_real_coco_photo() -> None:
    folder = SHARED_DATA / "coco_images" / "llava_bench_coco_val2014"
    photos = sorted(folder.glob("*.jpg")) if folder.is_dir() else []
    if not photos:
        pytest.skip(f"shared COCO images not found under {folder}")
    url = image_part(photos[0], max_side=336)["image_url"]["url"]
    image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
    assert image.format == "PNG" and max(image.size) == 336


def test_image_part_rejects_corrupt_and_missing_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image")
    truncated = tmp_path / "truncated.png"
    buffer = io.BytesIO()
    _gradient(64, 64).save(buffer, format="PNG")
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    for bad in (garbage, truncated, tmp_path / "missing.png"):
        with pytest.raises(DataError, match=rf"^{bad}: .*; fix: "):
            image_part(bad)


# ----- local transformers client on tiny random models ----------------------------------------------------
TEXT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
IMAGE_TEXT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{% for p in m['content'] %}"
    "{% if p['type'] == 'image' %}<image>{% else %}{{ p['text'] }}{% endif %}{% endfor %}</s>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _tiny_tokenizer(extra_tokens: tuple[str, ...] = ()):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<unk>", "<s>", "</s>", "<pad>", *extra_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    corpus = ["a photo of a cat on a red sofa", "user assistant system: describe the image briefly"]
    backend.train_from_iterator(corpus * 20, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def _tiny_llama_config(tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


@pytest.fixture(scope="module")
def tiny_text_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import LlamaForCausalLM

    directory = tmp_path_factory.mktemp("tiny_llama")
    tokenizer = _tiny_tokenizer()
    tokenizer.chat_template = TEXT_TEMPLATE
    torch.manual_seed(0)
    LlamaForCausalLM(_tiny_llama_config(tokenizer)).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_llava_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    directory = tmp_path_factory.mktemp("tiny_llava")
    tokenizer = _tiny_tokenizer(("<image>",))
    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=32,
        patch_size=8,
    )
    config = LlavaConfig(
        vision_config=vision,
        text_config=_tiny_llama_config(tokenizer),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    torch.manual_seed(0)
    LlavaForConditionalGeneration(config).save_pretrained(directory)
    image_processor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=8,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=IMAGE_TEXT_TEMPLATE,
    ).save_pretrained(directory)
    return directory


def _manual_greedy(model_dir: Path, messages: list[dict], steps: int) -> tuple[str, int]:
    """Reference: argmax decoding with explicit forward passes, independent of ``generate``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"]
    prompt_length, ids = len(ids), list(ids)
    with torch.inference_mode():
        for _ in range(steps):
            next_id = int(model(torch.tensor([ids])).logits[0, -1].argmax())
            ids.append(next_id)
            if next_id == tokenizer.eos_token_id:
                break
    return tokenizer.decode(ids[prompt_length:], skip_special_tokens=True).strip(), prompt_length


def test_hf_client_greedy_matches_reference_decoding(tiny_text_model: Path) -> None:
    from lvlm.construction.backends.clients.hf_client import HFChatClient

    client = HFChatClient(tiny_text_model)
    messages = ask("describe a cat")
    result = asyncio.run(client.chat(messages, max_tokens=12))
    expected_text, prompt_length = _manual_greedy(tiny_text_model, messages, 12)
    assert (result.text, result.prompt_tokens) == (expected_text, prompt_length)
    assert 1 <= result.completion_tokens <= 12 and result.finish_reason in ("stop", "length")
    assert client.usage_summary()["api_calls"] == 1 and client.usage_summary()["cost_usd"] == 0.0


def test_hf_client_seeded_sampling_is_reproducible(tiny_text_model: Path) -> None:
    import torch

    from lvlm.construction.backends.clients.hf_client import HFChatClient

    client = HFChatClient(tiny_text_model)
    torch.manual_seed(123)
    state_before = torch.get_rng_state()

    async def sample(seed: int) -> str:
        return (await client.chat(ask("a red sofa"), temperature=1.5, max_tokens=16, seed=seed)).text

    first, again, other = asyncio.run(sample(1)), asyncio.run(sample(1)), asyncio.run(sample(2))
    assert first == again and first != other
    assert torch.equal(torch.get_rng_state(), state_before)  # the caller's RNG is untouched
    assert client.usage_summary()["api_calls"] == 3


def test_hf_client_cache_and_input_checks(tiny_text_model: Path, tmp_path: Path) -> None:
    from lvlm.construction.backends.clients.hf_client import HFChatClient

    first = asyncio.run(HFChatClient(tiny_text_model, cache_dir=tmp_path).chat(ask("cat"), max_tokens=6))
    rerun_client = HFChatClient(tiny_text_model, cache_dir=tmp_path)
    rerun = asyncio.run(rerun_client.chat(ask("cat"), max_tokens=6))
    if first.text.strip():  # empty replies are deliberately not cached
        assert rerun.cached and rerun.text == first.text and rerun_client.usage_summary()["api_calls"] == 0
    picture = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(picture)
    with_image = [{"role": "user", "content": [image_part(picture), {"type": "text", "text": "what?"}]}]
    with pytest.raises(LvlmError, match="text-only model"):
        asyncio.run(rerun_client.chat(with_image))
    with pytest.raises(LvlmError, match="cannot load a chat model"):
        HFChatClient(tmp_path / "no_such_model")


def test_hf_client_image_text_model(tiny_llava_model: Path, tmp_path: Path) -> None:
    from lvlm.construction.backends.clients.hf_client import HFChatClient

    picture = tmp_path / "red.png"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(picture)
    client = HFChatClient(tiny_llava_model)
    text_only = asyncio.run(client.chat([{"role": "user", "content": "describe"}], max_tokens=4))
    messages = [{"role": "user", "content": [image_part(picture), {"type": "text", "text": "describe"}]}]
    with_image = asyncio.run(client.chat(messages, max_tokens=4))
    assert client.multimodal and "image-text" in repr(client)
    assert with_image.prompt_tokens - text_only.prompt_tokens == 16  # (32 px / 8 px patches)² image tokens
    assert 1 <= with_image.completion_tokens <= 4
