"""Write an exported checkpoint: merged LLM + tokenizer in HF layout, projector, vision config, card, and
(HF CLIP tower + ``mlp2x_gelu`` projector) the whole LVLM in transformers' LLaVA layout (``llava_hf``).

Everything is written into a hidden ``.<out>.partial-<pid>`` folder beside ``out`` and renamed into place
at the end, so an interrupted export never leaves a half-written ``out``.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from lvlm.errors import ConfigError
from lvlm.export.card import model_card, run_facts
from lvlm.export.chat_template import chat_template_for
from lvlm.export.llava_hf import LLAVA_HF_DIR, unsupported_reason, write_llava_hf
from lvlm.models.checkpoint import load_lvlm_checkpoint, read_checkpoint
from lvlm.templates import get_template

LLM_DIR = "llm"
PROJECTOR_FILE = "projector.safetensors"
VISION_CONFIG_FILE = "vision_config.json"
PROVENANCE_FILE = "export.json"
CARD_FILE = "README.md"


@dataclass(frozen=True)
class ExportResult:
    """Where an export went and what it holds."""

    out: Path
    llm_dir: Path
    projector: Path
    vision_config: Path
    card: Path
    provenance: Path
    merged_lora: bool
    template: str
    facts: dict[str, Any] = field(default_factory=dict)
    llava_hf: Path | None = None  # out/llava_hf/ (LlavaForConditionalGeneration) when the model has it

    def files(self) -> list[Path]:
        extra = [self.llava_hf] if self.llava_hf is not None else []
        return [self.llm_dir, self.projector, self.vision_config, self.provenance, self.card, *extra]


def lvlm_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lvlm")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "unknown"


def check_out_dir(out: Path, overwrite: bool) -> None:
    """``out`` must be absent, an empty folder, or ``overwrite`` must be set."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: out is a file, not a folder; fix: pass out=<a new folder>")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise ConfigError(
            f"{out}: output folder exists and is not empty; fix: pass overwrite=true or choose another out="
        )


def export_checkpoint(ckpt: str | Path, out: str | Path, *, overwrite: bool = False) -> ExportResult:
    """Export the LVLM trained in ``ckpt`` into ``out`` (see the package docstring)."""
    ckpt, out = Path(ckpt), Path(out)
    check_out_dir(out, overwrite)
    info = read_checkpoint(ckpt)  # one-line errors for a missing, empty, truncated or foreign file
    built = load_lvlm_checkpoint(ckpt)
    base_model = dict(info.base.get("model") or {})
    llm, merged = merge_lora(built.model.llm)
    template = get_template(built.template)
    tokenizer = built.tokenizer
    jinja = chat_template_for(template)
    if jinja is not None:
        tokenizer.chat_template = jinja

    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir()
    try:
        llm.save_pretrained(partial / LLM_DIR, safe_serialization=True)
        tokenizer.save_pretrained(partial / LLM_DIR)
        projector_meta = save_projector(built.model.projector, base_model, partial / PROJECTOR_FILE)
        vision = dict(base_model.get("vision") or {})
        vision.update(
            image_size=int(built.model.vision.image_size),
            num_patches=int(built.model.num_image_tokens),
            hidden_size=int(built.model.vision.hidden_size),
            mean=[float(v) for v in built.model.vision.mean],
            std=[float(v) for v in built.model.vision.std],
        )
        write_json(partial / VISION_CONFIG_FILE, vision)
        no_llava = unsupported_reason(built.model, projector_meta["kind"])
        if no_llava is None:
            write_llava_hf(built.model, llm, tokenizer, template, partial / LLAVA_HF_DIR)
        facts = run_facts(ckpt, info.base, merged, template.name, projector_meta, jinja is not None)
        facts["llava_hf"] = LLAVA_HF_DIR if no_llava is None else f"not written: {no_llava}"
        facts["lvlm_version"] = lvlm_version()
        write_json(partial / PROVENANCE_FILE, facts)
        (partial / CARD_FILE).write_text(model_card(facts), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        partial.rename(out)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return ExportResult(
        out, out / LLM_DIR, out / PROJECTOR_FILE, out / VISION_CONFIG_FILE, out / CARD_FILE,
        out / PROVENANCE_FILE, merged, template.name, facts,
        llava_hf=out / LLAVA_HF_DIR if no_llava is None else None,
    )  # fmt: skip


def merge_lora(llm: torch.nn.Module) -> tuple[torch.nn.Module, bool]:
    """The plain ``PreTrainedModel`` with LoRA weights folded in (unchanged when it has no adapters)."""
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return llm, False
    if isinstance(llm, PeftModel):
        return llm.merge_and_unload(), True
    return llm, False


def save_projector(projector: torch.nn.Module, base_model: dict[str, Any], path: Path) -> dict[str, str]:
    """The projector's weights as safetensors; its kind and shapes go into the file's metadata."""
    from safetensors.torch import save_file

    state = {key: value.detach().to("cpu").contiguous() for key, value in projector.state_dict().items()}
    linears = [m for m in projector.modules() if isinstance(m, torch.nn.Linear)]
    meta = {
        "kind": str((base_model.get("projector") or {}).get("kind", "linear")),
        "in_features": str(linears[0].in_features if linears else ""),
        "out_features": str(linears[-1].out_features if linears else ""),
        "format": "pt",
    }
    save_file(state, str(path), metadata=meta)
    return meta


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
