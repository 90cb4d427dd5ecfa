"""Chat client over a local Hugging Face ``transformers`` model.

``HFChatClient`` loads a model directory (or hub id) once: a text LLM through ``AutoTokenizer`` +
``AutoModelForCausalLM``, or a LLaVA-style model through ``AutoProcessor`` + ``AutoModelForImageTextToText``
when its config has a vision part (or ``multimodal=True``). Prompts are built with the model's own chat
template. Generation is greedy at temperature 0 and plain temperature sampling (top-p 1, no top-k) otherwise,
seeded per request without disturbing the global RNG, and runs in a worker thread one request at a time so
the event loop stays free. It shares the reply cache, in-flight de-duplication and usage accounting of the
OpenAI client and implements the same ``ChatClient`` interface.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    AutoModelForCausalLM,
    AutoModelForImageTextToText,
    AutoProcessor,
    AutoTokenizer,
)

from lvlm.construction.backends.clients.base import (
    ChatResult,
    PerLoop,
    UsageCounter,
    content_parts,
    has_images,
    message_text,
    validate_messages,
)
from lvlm.construction.backends.clients.cache import CoalescingCache, ResponseCache, request_key
from lvlm.construction.backends.clients.images import image_from_data_url
from lvlm.errors import LvlmError
from lvlm.models.llm import resolve_dtype


def _resolve_dtype(dtype: str | None) -> torch.dtype | str | None:
    if dtype is None or dtype == "auto":
        return dtype
    return resolve_dtype(dtype)


def _is_multimodal_config(config: object) -> bool:
    return getattr(config, "vision_config", None) is not None


class HFChatClient:
    """Local ``transformers`` generation behind the ``ChatClient`` interface (concurrency 1)."""

    name = "hf"

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        dtype: str | None = None,
        multimodal: bool | None = None,
        cache_dir: Path | str | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.model = str(model)
        self.device = torch.device(device)
        self._usage = UsageCounter()
        self._store = CoalescingCache(
            ResponseCache(cache_dir) if cache_dir else None, self._usage, model=self.model
        )
        self._gate = PerLoop(lambda: asyncio.Semaphore(1))
        self._load(_resolve_dtype(dtype), multimodal, trust_remote_code)

    def __repr__(self) -> str:
        kind = "image-text" if self.multimodal else "text"
        return f"HFChatClient(model={self.model!r}, kind={kind!r}, device={str(self.device)!r})"

    def _load(
        self, dtype: torch.dtype | str | None, multimodal: bool | None, trust_remote_code: bool
    ) -> None:
        kwargs = {"trust_remote_code": trust_remote_code}
        try:
            config = AutoConfig.from_pretrained(self.model, **kwargs)
            self.multimodal = _is_multimodal_config(config) if multimodal is None else multimodal
            if self.multimodal:
                self._processor = AutoProcessor.from_pretrained(self.model, **kwargs)
                self._tokenizer = self._processor.tokenizer
                loaded = AutoModelForImageTextToText.from_pretrained(self.model, dtype=dtype, **kwargs)
            else:
                self._processor = None
                self._tokenizer = AutoTokenizer.from_pretrained(self.model, **kwargs)
                loaded = AutoModelForCausalLM.from_pretrained(self.model, dtype=dtype, **kwargs)
        except (OSError, ValueError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise LvlmError(
                f"{self.model}: cannot load a chat model ({first_line}); fix: point model at a local model "
                "directory with config, weights and tokenizer (hub ids need network access)"
            ) from None
        template_owner = self._processor if self.multimodal else self._tokenizer
        if not getattr(template_owner, "chat_template", None):
            raise LvlmError(f"{self.model}: the model has no chat_template; fix: use a chat/instruct model")
        self._model = loaded.to(self.device).eval()

    async def chat(
        self,
        messages: list[dict],
        *,
        temperature: float = 0.0,
        max_tokens: int = 512,
        seed: int | None = None,
    ) -> ChatResult:
        validate_messages(messages)
        if has_images(messages) and not self.multimodal:
            raise LvlmError(
                f"{self.model}: messages contain images but this is a text-only model; "
                "fix: use an image-text model or send captions instead of images"
            )
        request = {"backend": self.name, "model": self.model, "messages": messages}
        request.update(temperature=temperature, max_tokens=max_tokens, seed=seed)
        return await self._store.get_or_produce(
            request_key(request), lambda: self._generate(messages, temperature, max_tokens, seed)
        )

    def usage_summary(self) -> dict:
        return {"backend": self.name, "model": self.model, **self._usage.as_dict()}

    async def aclose(self) -> None:
        return None

    async def _generate(
        self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None
    ) -> ChatResult:
        async with self._gate.get():
            self._usage.api_calls += 1
            result = await asyncio.to_thread(self.generate_sync, messages, temperature, max_tokens, seed)
        self._usage.add_reply(result)
        return result

    # ----- synchronous generation (worker thread) ---------------------------------------------------------
    def generate_sync(
        self, messages: list[dict], temperature: float, max_tokens: int, seed: int | None = None
    ) -> ChatResult:
        """Encode with the chat template, generate, and decode one reply (no cache)."""
        inputs = self._encode(messages)
        config = self._generation_config(temperature, max_tokens)
        rng_devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=rng_devices), torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            output = self._model.generate(**inputs, generation_config=config)
        prompt_length = int(inputs["input_ids"].shape[1])
        return self._decode(output[0, prompt_length:].tolist(), prompt_length, config)

    def _encode(self, messages: list[dict]) -> dict:
        template_args = {"add_generation_prompt": True, "tokenize": True, "return_dict": True}
        if self.multimodal:
            converted = [self._multimodal_message(m, i) for i, m in enumerate(messages)]
            encoded = self._processor.apply_chat_template(converted, return_tensors="pt", **template_args)
        else:
            converted = [
                {"role": m["role"], "content": message_text(m["content"], where=f"chat message {i}")}
                for i, m in enumerate(messages)
            ]
            encoded = self._tokenizer.apply_chat_template(converted, return_tensors="pt", **template_args)
        return {name: value.to(self.device) for name, value in encoded.items()}

    @staticmethod
    def _multimodal_message(message: dict, index: int) -> dict:
        where = f"chat message {index}"
        parts = []
        for part in content_parts(message["content"], where=where):
            if part["type"] == "text":
                parts.append({"type": "text", "text": str(part.get("text", ""))})
            else:
                url = str((part.get("image_url") or {}).get("url", ""))
                parts.append({"type": "image", "image": image_from_data_url(url, where=where)})
        return {"role": message["role"], "content": parts}

    def _generation_config(self, temperature: float, max_tokens: int):  # -> GenerationConfig
        if temperature < 0 or max_tokens < 1:
            raise LvlmError(f"need temperature >= 0 and max_tokens >= 1, got {temperature} and {max_tokens}")
        config = copy.deepcopy(self._model.generation_config)
        config.max_new_tokens = max_tokens
        config.max_length = None
        config.do_sample = temperature > 0
        config.temperature = temperature if temperature > 0 else None
        config.top_p = 1.0 if temperature > 0 else None
        config.top_k = None
        if config.pad_token_id is None:
            config.pad_token_id = self._tokenizer.pad_token_id
        if config.pad_token_id is None:
            config.pad_token_id = self._eos_ids(config)[0] if self._eos_ids(config) else 0
        return config

    def _eos_ids(self, config: object) -> list[int]:
        eos = getattr(config, "eos_token_id", None)
        if eos is None:
            eos = self._tokenizer.eos_token_id
        if eos is None:
            return []
        return list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]

    def _decode(self, new_ids: list[int], prompt_length: int, config: object) -> ChatResult:
        eos_ids = set(self._eos_ids(config))
        stop_at = next((i for i, token in enumerate(new_ids) if token in eos_ids), None)
        kept = new_ids if stop_at is None else new_ids[: stop_at + 1]
        text = self._tokenizer.decode(kept, skip_special_tokens=True).strip()
        return ChatResult(
            text=text,
            prompt_tokens=prompt_length,
            completion_tokens=len(kept),
            cached=False,
            finish_reason="length" if stop_at is None else "stop",
        )
