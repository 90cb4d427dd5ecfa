"""``ScoringModel`` adapter for any Hugging Face causal LM (Llama architecture and others).

``HFScoringModel`` wraps a loaded ``PreTrainedModel`` and its tokenizer: it chat-wraps a prompt with the
tokenizer's own chat template (one user turn plus the generation prompt; identity when the tokenizer has no
template), encodes and decodes, embeds ids and runs a cached forward pass on embeddings. Its
``fingerprint`` identifies the exact model + tokenizer + wrapping settings, so cached predictions are reused
only for the same weights. ``load_hf_scoring_model`` is the real ``from_pretrained`` path; offline, a hub id
that is not in the local cache fails with one clear line.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch

from lvlm.errors import ConfigError
from lvlm.models.llm import resolve_dtype

_SAMPLES_PER_TENSOR = 4096


_INTEGER_VIEWS = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _bit_pattern_sum(flat: torch.Tensor) -> int:
    """Sum of the elements' bit patterns as integers: exact, so independent of thread count and order."""
    return int(flat.contiguous().view(_INTEGER_VIEWS[flat.element_size()]).sum(dtype=torch.int64))


def _parameter_digest(model: torch.nn.Module) -> str:
    """Hash of every tensor's name, shape, dtype, bit-pattern sum and a strided sample of its values."""
    digest = hashlib.sha256()
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            flat = tensor.detach().reshape(-1)
            stride = max(1, flat.numel() // _SAMPLES_PER_TENSOR)
            sample = flat[::stride].to(torch.float64).cpu().numpy().tobytes()
            checksum = _bit_pattern_sum(flat) if flat.numel() else 0
            digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|{checksum}|".encode())
            digest.update(sample)
    return digest.hexdigest()


def _config_json(model: torch.nn.Module) -> str:
    config = getattr(model, "config", None)
    if config is None:
        return "{}"
    values = config.to_dict()
    # keys that save/load fill in or rewrite; the real dtypes are part of the parameter digest
    for volatile_key in ("transformers_version", "_name_or_path", "_commit_hash", "architectures", "dtype"):
        values.pop(volatile_key, None)
    values["model_class"] = type(model).__name__
    return json.dumps(values, sort_keys=True, default=str)


def _tokenizer_json(tokenizer: object, use_chat_template: bool, system_prompt: str | None) -> str:
    facts = {
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "special_tokens": sorted(map(str, tokenizer.all_special_tokens)),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "use_chat_template": use_chat_template,
        "system_prompt": system_prompt,
        "probe": tokenizer("Verbalizer fingerprint probe: positive / negative.")["input_ids"],
    }
    return json.dumps(facts, sort_keys=True, default=str)


def model_fingerprint(
    model: torch.nn.Module, tokenizer: object, *, use_chat_template: bool, system_prompt: str | None
) -> str:
    """sha256 over the model config, a parameter hash, the tokenizer and the prompt-wrapping settings."""
    parts = [
        _config_json(model),
        _parameter_digest(model),
        _tokenizer_json(tokenizer, use_chat_template, system_prompt),
    ]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _eos_ids(model: torch.nn.Module, tokenizer: object) -> frozenset[int]:
    ids: set[int] = set()
    for source in (getattr(model, "generation_config", None), getattr(model, "config", None), tokenizer):
        value = getattr(source, "eos_token_id", None)
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, (list, tuple)):
            ids.update(int(v) for v in value)
    return frozenset(ids)


class HFScoringModel:
    """A Hugging Face causal LM + tokenizer seen through the ``ScoringModel`` protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: object,
        *,
        use_chat_template: bool = True,
        system_prompt: str | None = None,
        fingerprint: str | None = None,
    ) -> None:
        """``fingerprint`` replaces the computed one (wrappers that hash more than ``model`` pass theirs)."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.system_prompt = system_prompt
        self.uses_chat_template = bool(use_chat_template and getattr(tokenizer, "chat_template", None))
        self.eos_token_ids = _eos_ids(model, tokenizer)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = int(pad) if pad is not None else min(self.eos_token_ids, default=0)
        self.fingerprint = fingerprint or model_fingerprint(
            model, tokenizer, use_chat_template=self.uses_chat_template, system_prompt=system_prompt
        )
        self.supports_logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def format_prompt(self, prompt: str) -> str:
        if not self.uses_chat_template:
            return prompt
        messages = [{"role": "user", "content": prompt}]
        if self.system_prompt:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        # A rendered chat template already spells out its BOS/control tokens; raw prompts get them added.
        return list(self.tokenizer(text, add_special_tokens=not self.uses_chat_template)["input_ids"])

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids.to(self.device))

    @torch.inference_mode()
    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        past_key_values: object | None = None,
        logits_to_keep: int = 0,
    ) -> tuple[torch.Tensor, object]:
        """Cached decoder pass; ``logits_to_keep=k>0`` returns logits of the last ``k`` positions only."""
        extra = {"logits_to_keep": logits_to_keep} if self.supports_logits_to_keep else {}
        output = self.model(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask.to(self.device),
            position_ids=position_ids.to(self.device),
            past_key_values=past_key_values,
            use_cache=True,
            **extra,
        )
        return output.logits, output.past_key_values


def load_hf_scoring_model(
    name_or_path: str,
    dtype: str = "float32",
    device: str = "cpu",
    *,
    use_chat_template: bool = True,
    system_prompt: str | None = None,
) -> HFScoringModel:
    """Load a causal LM and tokenizer with ``from_pretrained`` and wrap them as an ``HFScoringModel``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype)
    except (OSError, ValueError) as error:
        where = "local directory" if Path(name_or_path).exists() else "hub id (not in the local cache?)"
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ConfigError(
            f"{name_or_path}: cannot load model/tokenizer from this {where}: {first_line}; fix: pass a local "
            "directory holding config.json, weights and tokenizer files, or download the model first "
            "(HF_HUB_OFFLINE=1 forbids downloads)"
        ) from None
    return HFScoringModel(
        model.to(device), tokenizer, use_chat_template=use_chat_template, system_prompt=system_prompt
    )
