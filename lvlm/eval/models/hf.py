"""``ScoringModel`` adapter for any Hugging Face causal LM (Llama architecture and others).

``HFScoringModel`` wraps a loaded ``PreTrainedModel`` and its tokenizer: it chat-wraps a prompt with the
tokenizer's own chat template (one user turn plus the generation prompt; identity when the tokenizer has no
template) or, when given one, with a project template (``model.template``), records that ``wrapping``
(``lvlm.eval.models.wrapping``), encodes and decodes, embeds ids and runs a cached forward pass on
embeddings. Its ``fingerprint`` identifies the exact model + tokenizer + wrapping settings, so cached
predictions are reused only for the same weights. ``load_hf_scoring_model`` is the real ``from_pretrained``
path; offline, a hub id that is not in the local cache fails with one clear line.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path

import torch

from lvlm.errors import ConfigError
from lvlm.eval.models.wrapping import (
    RAW_PROMPT,
    TOKENIZER_TEMPLATE,
    effective_system_prompt,
    keeps_template_system,
    resolve_template,
    system_prompt_override,
    wrapping_record,
)
from lvlm.models.llm import resolve_dtype
from lvlm.templates import ChatTemplate

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


def _tokenizer_json(
    tokenizer: object, use_chat_template: bool, system_prompt: str | None, template: str | None = None
) -> str:
    facts = {
        "class": type(tokenizer).__name__,
        "vocab_size": len(tokenizer),
        "special_tokens": sorted(map(str, tokenizer.all_special_tokens)),
        "chat_template": getattr(tokenizer, "chat_template", None),
        "use_chat_template": use_chat_template,
        "system_prompt": system_prompt,
        "probe": tokenizer("Verbalizer fingerprint probe: positive / negative.")["input_ids"],
    }
    if template is not None:  # only set when a project template wraps the prompts (keeps older digests)
        facts["template"] = template
    return json.dumps(facts, sort_keys=True, default=str)


def model_fingerprint(
    model: torch.nn.Module,
    tokenizer: object,
    *,
    use_chat_template: bool,
    system_prompt: str | None,
    template: str | None = None,
) -> str:
    """sha256 over the model config, a parameter hash, the tokenizer and the prompt-wrapping settings."""
    parts = [
        _config_json(model),
        _parameter_digest(model),
        _tokenizer_json(tokenizer, use_chat_template, system_prompt, template),
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
    """A Hugging Face causal LM + tokenizer seen through the ``ScoringModel`` protocol.

    ``template`` (a project ``ChatTemplate``, system prompt included) replaces the tokenizer's chat
    template; otherwise ``system_prompt`` is passed to the tokenizer's template as a system message.
    ``wrapping`` records how prompts are wrapped (results.json).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: object,
        *,
        use_chat_template: bool = True,
        system_prompt: str | None = None,
        fingerprint: str | None = None,
        template: ChatTemplate | None = None,
    ) -> None:
        """``fingerprint`` replaces the computed one (wrappers that hash more than ``model`` pass theirs)."""
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.template = template
        self.system_prompt = template.system if template is not None else system_prompt
        self.uses_chat_template = template is None and bool(
            use_chat_template and getattr(tokenizer, "chat_template", None)
        )
        self.eos_token_ids = _eos_ids(model, tokenizer)
        pad = getattr(tokenizer, "pad_token_id", None)
        self.pad_token_id = int(pad) if pad is not None else min(self.eos_token_ids, default=0)
        self.fingerprint = fingerprint or model_fingerprint(
            model, tokenizer, use_chat_template=self.uses_chat_template, system_prompt=self.system_prompt,
            template=template.name if template is not None else None,
        )  # fmt: skip
        self.supports_logits_to_keep = "logits_to_keep" in inspect.signature(model.forward).parameters

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def wrapping(self) -> dict[str, object]:
        """Template, system prompt and image slot of the prompts (text-only: no image slot)."""
        if self.template is not None:
            name, system = self.template.name, self.template.system
        elif self.uses_chat_template:
            name = TOKENIZER_TEMPLATE
            system = self.system_prompt or effective_system_prompt(lambda sys: self._chat("P", sys))
        else:
            name, system = RAW_PROMPT, None
        return wrapping_record(name, system, "none", self.format_prompt)

    def _chat(self, prompt: str, system_prompt: str | None) -> str:
        messages = [{"role": "user", "content": prompt}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": system_prompt})
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def format_prompt(self, prompt: str) -> str:
        if self.template is not None:
            return self.template.generation_prompt(prompt)
        if not self.uses_chat_template:
            return prompt
        return self._chat(prompt, self.system_prompt)

    def encode(self, text: str) -> list[int]:
        # A rendered chat template already spells out its BOS/control tokens; raw prompts get them added.
        wrapped = self.uses_chat_template or self.template is not None
        return list(self.tokenizer(text, add_special_tokens=not wrapped)["input_ids"])

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


def resolve_device(device: str) -> torch.device:
    """``model.device`` as a torch device; CUDA on a machine without it is one clear ``ConfigError``."""
    try:
        resolved = torch.device(str(device))
    except (RuntimeError, ValueError):
        raise ConfigError(f"unknown model.device '{device}'; fix: model.device=cpu or cuda[:N]") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"model.device={device} but CUDA is not available on this machine; fix: model.device=cpu "
            "(with model.dtype=float32 or bfloat16)"
        )
    if resolved.type == "cuda" and resolved.index is not None and resolved.index >= torch.cuda.device_count():
        raise ConfigError(
            f"model.device={device} but this machine has {torch.cuda.device_count()} CUDA device(s); "
            "fix: model.device=cuda:0"
        )
    return resolved


def load_hf_scoring_model(
    name_or_path: str,
    dtype: str = "float32",
    device: str = "cpu",
    *,
    use_chat_template: bool = True,
    system_prompt: str | None = None,
    template: str | None = None,
) -> HFScoringModel:
    """Load a causal LM and tokenizer with ``from_pretrained`` and wrap them as an ``HFScoringModel``.

    ``template`` names a project template that replaces the tokenizer's chat template; ``system_prompt``
    follows ``model.system_prompt`` (``lvlm.eval.models.wrapping``: null, ``none``, ``llava``, or text).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = resolve_dtype(dtype)
    torch_device = resolve_device(device)
    chat_template = resolve_template("", template, system_prompt) if template else None
    override = system_prompt_override(system_prompt)
    system_text = None if keeps_template_system(override) else override
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
        model.to(torch_device), tokenizer, use_chat_template=use_chat_template, system_prompt=system_text,
        template=chat_template,
    )  # fmt: skip
