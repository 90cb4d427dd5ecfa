"""Export a trained LVLM checkpoint to files the wider ecosystem reads (``python export.py``).

``export_checkpoint(ckpt, out)`` rebuilds the model with ``lvlm.models.checkpoint.load_lvlm_checkpoint``,
merges LoRA adapters into the LLM, and writes ``out/llm/`` (``save_pretrained``: config, safetensors
weights, generation config, tokenizer with the training chat template), ``out/projector.safetensors``,
``out/vision_config.json``, ``out/export.json`` (provenance) and ``out/README.md`` (a model card). The LLM
then loads with ``AutoModelForCausalLM.from_pretrained(out / "llm")`` and ``AutoTokenizer`` alone. With an
HF CLIP tower and the ``mlp2x_gelu`` projector the whole LVLM is also written in transformers' LLaVA layout,
``out/llava_hf/`` (``LlavaForConditionalGeneration`` + ``LlavaProcessor``; ``lvlm.export.llava_hf``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportResult", "export_checkpoint"]


def __getattr__(name: str) -> Any:  # lazy: ``python export.py --help`` must not import torch
    if name in __all__:
        from lvlm.export import writer

        return getattr(writer, name)
    raise AttributeError(f"module 'lvlm.export' has no attribute '{name}'")
