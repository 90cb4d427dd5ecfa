"""Language-model and tokenizer loading, and LoRA.

``build_tokenizer_from_cfg`` returns the project's tiny tokenizer (offline default) or a Hugging Face
tokenizer by path/hub id, with the ``<image>`` placeholder and a pad token added. ``build_llm`` builds a
random Llama-architecture causal LM from a config dict (tiny presets) or loads one with
``AutoModelForCausalLM.from_pretrained`` (real presets), resizing embeddings to the tokenizer.
``apply_lora`` wraps the LLM with peft LoRA adapters when configured; ``target_modules: all-linear``
resolves to every linear layer of the LLM except its output layer (``lora_target_modules``), as LLaVA's
``find_all_linear_names`` does. See docs/model.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from lvlm.constants import IMAGE_TOKEN
from lvlm.errors import ConfigError
from lvlm.models.efficiency import resolve_attention
from lvlm.models.tokenizer import load_or_build_tokenizer
from lvlm.registry import Registry
from lvlm.templates import LLAMA2_CHAT_JINJA

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(name: str) -> torch.dtype:
    """The torch dtype called ``name``; a miss lists the valid names."""
    if name not in DTYPES:
        raise ConfigError(f"unknown dtype '{name}'; valid dtype names: {', '.join(sorted(DTYPES))}")
    return DTYPES[name]


TOKENIZERS: Registry[Callable[[dict[str, Any], Path | None], PreTrainedTokenizerBase]] = Registry(
    "tokenizer kind"
)


@TOKENIZERS.register("tiny")
def tiny_tokenizer(cfg: dict[str, Any], cache_dir: Path | None) -> PreTrainedTokenizerBase:
    """The project's own byte-level BPE, trained in-process and cached."""
    return load_or_build_tokenizer(cache_dir, int(cfg.get("vocab_size", 1024)))


@TOKENIZERS.register("hf")
def hf_tokenizer(cfg: dict[str, Any], cache_dir: Path | None) -> PreTrainedTokenizerBase:
    """A Hugging Face tokenizer by path or hub id, with ``<image>``, a pad token and a chat template."""
    tok = AutoTokenizer.from_pretrained(cfg["name_or_path"], use_fast=True)
    if IMAGE_TOKEN not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if tok.pad_token is None:
        tok.pad_token = tok.unk_token or tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = LLAMA2_CHAT_JINJA
    return tok


def build_tokenizer_from_cfg(cfg: dict[str, Any], cache_dir: Path | None) -> PreTrainedTokenizerBase:
    """The tokenizer named by ``cfg["kind"]`` (default ``tiny``)."""
    return TOKENIZERS.get(str(cfg.get("kind", "tiny")))(cfg, cache_dir)


def build_llm(cfg: dict[str, Any], tokenizer: PreTrainedTokenizerBase) -> PreTrainedModel:
    dtype = resolve_dtype(str(cfg.get("dtype", "float32")))
    attention = resolve_attention(cfg.get("attn_implementation"))
    if cfg.get("name_or_path"):
        llm = AutoModelForCausalLM.from_pretrained(
            cfg["name_or_path"], dtype=dtype, attn_implementation=attention
        )
    else:
        config = LlamaConfig(
            vocab_size=len(tokenizer),
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            **dict(cfg.get("config") or {}),
        )
        config._attn_implementation = attention
        llm = LlamaForCausalLM(config).to(dtype)
    if llm.get_input_embeddings().num_embeddings < len(tokenizer):
        llm.resize_token_embeddings(len(tokenizer))
    return llm


ALL_LINEAR = "all-linear"
DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj"]


def lora_target_modules(llm: PreTrainedModel, targets: str | list[str] | None) -> list[str]:
    """The module names LoRA wraps; ``"all-linear"`` = every ``nn.Linear`` of ``llm`` but its output layer.

    Names are the last component of the module path (``q_proj``, ``down_proj`` …), the form peft matches
    against every layer; the output layer (``lm_head``) is excluded by identity.
    """
    if not targets:
        return list(DEFAULT_LORA_TARGETS)
    if isinstance(targets, str):
        if targets != ALL_LINEAR:
            return [targets]
        output = llm.get_output_embeddings()
        names = {
            name.rsplit(".", 1)[-1]
            for name, module in llm.named_modules()
            if isinstance(module, nn.Linear) and module is not output
        }
        names.discard("lm_head")
        if not names:
            raise ConfigError(f"target_modules={ALL_LINEAR}: the LLM has no linear layers besides its output")
        return sorted(names)
    return [str(name) for name in targets]


def apply_lora(llm: PreTrainedModel, cfg: dict[str, Any] | None) -> PreTrainedModel:
    """Wrap ``llm`` with LoRA adapters when ``cfg`` is given (``r``, ``alpha``, ``dropout``, targets)."""
    if not cfg:
        return llm
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=int(cfg["r"]),
        lora_alpha=int(cfg["alpha"]),
        lora_dropout=float(cfg.get("dropout", 0.05)),
        target_modules=lora_target_modules(llm, cfg.get("target_modules")),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(llm, lora)
