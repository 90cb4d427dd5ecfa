"""Build an LVLM and its tokenizer from a ``model`` config.

One factory serves every preset: the tiny offline default (project tokenizer, random tiny Llama, tiny
open_clip or HF CLIP tower) and the real ones (CLIP ViT-L/14 + Llama-2-7b-chat), which differ only in
configuration. See ``conf/model/`` for the presets.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedTokenizerBase

from lvlm.errors import ConfigError
from lvlm.models.llm import apply_lora, build_llm, build_tokenizer_from_cfg
from lvlm.models.lvlm import LVLM
from lvlm.models.projector import build_projector
from lvlm.models.tokenizer import IMAGE_TOKEN
from lvlm.models.vision import HFClipTower, OpenClipTower, VisionTower


@dataclass
class BuiltModel:
    model: LVLM
    tokenizer: PreTrainedTokenizerBase
    template: str


def _plain(cfg: DictConfig | dict[str, Any] | None) -> dict[str, Any]:
    if cfg is None:
        return {}
    if isinstance(cfg, DictConfig):
        return OmegaConf.to_container(cfg, resolve=True)  # type: ignore[return-value]
    return dict(cfg)


def build_vision(cfg: dict[str, Any]) -> VisionTower:
    kind = cfg.get("kind")
    select_layer = int(cfg.get("select_layer", -2))
    if kind == "open_clip":
        return OpenClipTower(cfg["model_name"], cfg.get("pretrained"), select_layer)
    if kind == "hf_clip":
        return HFClipTower(cfg.get("name_or_path"), cfg.get("config"), select_layer)
    raise ConfigError(f"model.vision.kind must be 'open_clip' or 'hf_clip', got '{kind}'")


def build_model(cfg: DictConfig | dict[str, Any], cache_dir: Path | None = None) -> BuiltModel:
    """Tokenizer, vision tower, projector and LLM (optionally LoRA-wrapped) as one ``LVLM``."""
    cfg = _plain(cfg)
    tokenizer = build_tokenizer_from_cfg(_plain(cfg.get("tokenizer")), cache_dir)
    vision = build_vision(_plain(cfg["vision"]))
    llm = build_llm(_plain(cfg["llm"]), tokenizer)
    projector = build_projector(
        _plain(cfg.get("projector")).get("kind", "linear"), vision.hidden_size, llm.config.hidden_size
    )
    llm = apply_lora(llm, _plain(cfg.get("peft")) or None)
    image_token_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    model = LVLM(vision, projector, llm, image_token_id)
    return BuiltModel(model, tokenizer, str(cfg.get("template", "llava_llama_2")))
