"""Test support: lvlm training checkpoints of tiny presets, written without training.

``write_tiny_checkpoint`` builds the preset exactly as ``load_lvlm_checkpoint`` will rebuild it (same seed),
moves every trainable tensor away from its initial value (LoRA B matrices included, so a merge matters) and
saves the trainable tensors with the project's checkpoint metadata, as the LightningModule does.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import torch

from lvlm.models.checkpoint import checkpoint_metadata, frozen_fingerprint
from lvlm.models.presets import build_model
from lvlm.utils.seeding import seed_all

HF_CLIP_TINY = {
    "kind": "hf_clip",
    "name_or_path": None,
    "config": {"hidden_size": 48, "intermediate_size": 96, "num_hidden_layers": 3, "num_attention_heads": 4,
               "image_size": 32, "patch_size": 16},
    "select_layer": -2,
}  # fmt: skip
LORA_TINY = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


def tiny_cfg(base: dict[str, Any], *, hf_clip: bool = False, projector: str | None = None,
             lora: bool = False) -> dict[str, Any]:  # fmt: skip
    """``base`` (the tiny preset) with an HF CLIP tower, another projector and/or LoRA adapters."""
    cfg = copy.deepcopy(base)
    if hf_clip:
        cfg["vision"] = copy.deepcopy(HF_CLIP_TINY)
    if projector:
        cfg["projector"] = {"kind": projector}
    if lora:
        cfg["peft"] = dict(LORA_TINY)
    return cfg


def write_tiny_checkpoint(path: Path, model_cfg: dict[str, Any], *, seed: int = 0,
                          template: str = "llava_llama_2") -> Path:  # fmt: skip
    """A checkpoint of ``model_cfg`` whose trainable tensors (projector, LLM or LoRA) are perturbed."""
    seed_all(seed)
    model = build_model(model_cfg).model
    lora = any("lora_" in name for name, _ in model.named_parameters())
    trainable = {
        name
        for name, _ in model.named_parameters()
        if name.startswith("projector.") or ("lora_" in name if lora else name.startswith("llm."))
    }
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name in trainable:
                param.add_(0.05 * torch.randn(param.shape, generator=generator))
    own = model.state_dict()
    state = {f"model.{name}": own[name].clone() for name in trainable}
    base = {"model": model_cfg, "seed": seed, "template": template}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "lvlm": checkpoint_metadata(frozen_fingerprint(model, trainable),
                                                                 state, base)}, path)  # fmt: skip
    return path
