"""The stage freeze policy, in one place.

``apply_stage`` decides which parameters train: ``stage=pretrain`` trains only the projector (LLaVA stage
1), ``stage=finetune`` trains projector and LLM (LoRA adapters only when the LLM is peft-wrapped), and
``stage=text_finetune`` trains only the LLM. The vision tower stays frozen unless a stage asks otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import nn

from lvlm.models.lvlm import LVLM

PARTS = ("vision", "projector", "llm")


def _is_peft(module: nn.Module) -> bool:
    return hasattr(module, "peft_config")


def apply_stage(model: LVLM, train: Mapping[str, bool]) -> dict[str, int]:
    """Set ``requires_grad`` per part; returns the number of trainable parameters per part."""
    unknown = set(train) - set(PARTS)
    if unknown:
        raise ValueError(f"stage.train has unknown parts {sorted(unknown)}; valid: {', '.join(PARTS)}")
    counts = {}
    for part in PARTS:
        module: nn.Module = getattr(model, part)
        enabled = bool(train.get(part, False))
        for name, param in module.named_parameters():
            param.requires_grad = enabled and (not _is_peft(module) or "lora_" in name)
        counts[part] = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return counts


def trainable_names(model: nn.Module) -> set[str]:
    return {name for name, param in model.named_parameters() if param.requires_grad}
