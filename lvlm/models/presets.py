"""Build an LVLM and its tokenizer from a ``model`` config.

One factory serves every preset: the tiny offline default (project tokenizer, random tiny Llama, tiny
open_clip or HF CLIP tower) and the real ones (CLIP ViT-L/14 + Llama-2-7b-chat), which differ only in
configuration. See ``conf/model/`` for the presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig
from transformers import PreTrainedTokenizerBase

from lvlm.constants import IMAGE_TOKEN
from lvlm.models.efficiency import compile_llm, enable_gradient_checkpointing
from lvlm.models.llm import apply_lora, build_llm, build_tokenizer_from_cfg
from lvlm.models.lvlm import LVLM
from lvlm.models.projector import build_projector
from lvlm.models.vision import build_vision
from lvlm.utils.config import to_plain


@dataclass
class BuiltModel:
    model: LVLM
    tokenizer: PreTrainedTokenizerBase
    template: str


def build_model(cfg: DictConfig | dict[str, Any], cache_dir: Path | None = None) -> BuiltModel:
    """Tokenizer, vision tower, projector and LLM (optionally LoRA-wrapped) as one ``LVLM``."""
    cfg = to_plain(cfg)
    tokenizer = build_tokenizer_from_cfg(to_plain(cfg.get("tokenizer")), cache_dir)
    vision = build_vision(to_plain(cfg["vision"]))
    llm = build_llm(to_plain(cfg["llm"]), tokenizer)
    projector = build_projector(
        to_plain(cfg.get("projector")).get("kind", "linear"), vision.hidden_size, llm.config.hidden_size
    )
    llm = apply_lora(llm, to_plain(cfg.get("peft")) or None)
    if cfg.get("gradient_checkpointing"):
        enable_gradient_checkpointing(llm)
    if cfg.get("compile"):
        compile_llm(llm)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    model = LVLM(vision, projector, llm, image_token_id)
    return BuiltModel(model, tokenizer, str(cfg.get("template", "llava_llama_2")))
