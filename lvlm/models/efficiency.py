"""Speed and memory switches of the language model, each one config key with a safe default.

``model.llm.attn_implementation``: ``sdpa`` (PyTorch's fused scaled-dot-product attention, the default),
``eager``, ``flash_attention_2`` (used only when the ``flash_attn`` package is importable and a GPU is
present; otherwise SDPA with a warning), or ``auto`` (flash when available, else SDPA).
``model.gradient_checkpointing``: recompute each decoder layer's activations in the backward pass instead
of storing them (less memory, ~30 % more compute); works with LoRA because the non-reentrant variant does
not need inputs that require grad, and the embedding outputs are marked as such anyway.
``model.compile``: ``torch.compile`` the LLM in place (opt-in; parameter names and checkpoints are unchanged).
"""

from __future__ import annotations

import importlib.util
import logging

import torch
from transformers import PreTrainedModel

from lvlm.errors import ConfigError

log = logging.getLogger("lvlm.models")
ATTENTION = ("sdpa", "eager", "flash_attention_2", "auto")


def flash_attention_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()


def resolve_attention(name: str | None) -> str:
    """The attention implementation to build the LLM with."""
    name = str(name or "sdpa")
    if name not in ATTENTION:
        raise ConfigError(
            f"unknown model.llm.attn_implementation '{name}'; valid names: {', '.join(ATTENTION)}"
        )
    if name in ("flash_attention_2", "auto"):
        if flash_attention_available():
            return "flash_attention_2"
        if name == "flash_attention_2":
            log.warning("flash_attention_2 needs the flash_attn package and a GPU; using sdpa instead")
        return "sdpa"
    return name


def enable_gradient_checkpointing(llm: PreTrainedModel) -> None:
    """Recompute decoder-layer activations in backward (non-reentrant, so frozen inputs are fine)."""
    llm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(llm, "enable_input_require_grads"):
        llm.enable_input_require_grads()
    llm.config.use_cache = False


def compile_llm(llm: torch.nn.Module) -> None:
    """``torch.compile`` the LLM in place; its parameters and state-dict keys stay as they are."""
    llm.compile()
