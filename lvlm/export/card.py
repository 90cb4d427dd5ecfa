"""The model card (``README.md``) and provenance (``export.json``) of an exported checkpoint.

Facts come from the checkpoint's own metadata (base model config, seed, template) and, when the
checkpoint sits in a training run directory (``<run>/checkpoints/last.ckpt``), from that run's resolved
``config.yaml`` (run name, stage, data, ``init_from``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

LLAMA2_LICENSE = (
    "The LLM weights are a derivative of Llama 2 and fall under the Llama 2 Community License Agreement "
    "(https://ai.meta.com/llama/license/), including its Acceptable Use Policy; redistribute them only "
    "under those terms."
)
RANDOM_LICENSE = (
    "The LLM is a randomly initialised tiny Llama built by lvlm (no third-party weights); trained weights "
    "carry no licence beyond the project's Apache-2.0 and the terms of the training data."
)


def _read_run_config(ckpt: Path) -> tuple[Path | None, dict[str, Any]]:
    run_dir = ckpt.resolve().parent.parent
    config = run_dir / "config.yaml"
    if not config.is_file():
        return None, {}
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return run_dir, {}
    return run_dir, data if isinstance(data, dict) else {}


def _llm_description(model: dict[str, Any]) -> str:
    llm = dict(model.get("llm") or {})
    if llm.get("name_or_path"):
        return str(llm["name_or_path"])
    config = dict(llm.get("config") or {})
    shape = ", ".join(f"{k}={config[k]}" for k in ("num_hidden_layers", "hidden_size") if k in config)
    return f"tiny random Llama built by lvlm ({shape})" if shape else "random Llama built by lvlm"


def run_facts(
    ckpt: Path,
    base: dict[str, Any],
    merged_lora: bool,
    template: str,
    projector: dict[str, str],
    has_chat_template: bool,
) -> dict[str, Any]:
    """Everything the card states, as plain data (also written to ``export.json``)."""
    model = dict(base.get("model") or {})
    run_dir, run = _read_run_config(ckpt)
    stage = dict(run.get("stage") or {})
    data = dict(run.get("data") or {})
    peft = dict(model.get("peft") or {})
    return {
        "checkpoint": str(ckpt.resolve()),
        "run_dir": str(run_dir) if run_dir else None,
        "run_name": run.get("name"),
        "model_preset": model.get("name"),
        "base_llm": _llm_description(model),
        "base_llm_is_llama2": "llama-2" in str((model.get("llm") or {}).get("name_or_path", "")).lower(),
        "vision": dict(model.get("vision") or {}),
        "projector": projector,
        "lora": {"merged": merged_lora, **{k: peft[k] for k in ("r", "alpha") if k in peft}},
        "stage": stage.get("name"),
        "trains": dict(stage.get("train") or {}),
        "data": {k: data[k] for k in ("name", "kind", "dataset", "train_json", "root") if k in data},
        "init_from": run.get("init_from"),
        "seed": base.get("seed"),
        "template": template,
        "chat_template": "training template" if has_chat_template else "tokenizer default (no chat form)",
        "model_config": model,
    }


def model_card(facts: dict[str, Any]) -> str:
    """A Hugging Face style model card (YAML front matter + Markdown)."""
    llama2 = bool(facts["base_llm_is_llama2"])
    front = ["---", "library_name: transformers", f"license: {'llama2' if llama2 else 'apache-2.0'}"]
    if llama2:
        front.append(f"base_model: {facts['base_llm']}")
    front += ["tags: [lvlm, llava, visual-instruction-tuning]", "---", ""]
    lora = facts["lora"]
    lora_text = (
        f"LoRA r={lora.get('r')}, alpha={lora.get('alpha')} merged into the weights"
        if lora["merged"]
        else "none (full weights)"
    )
    data = facts["data"]
    data_text = ", ".join(f"{k}={v}" for k, v in data.items()) or "unknown (no run config.yaml found)"
    trains = ", ".join(k for k, v in facts["trains"].items() if v) or "unknown"
    vision = facts["vision"]
    vision_text = f"{vision.get('kind')} {vision.get('model_name') or vision.get('name_or_path') or ''}"
    proj = facts["projector"]
    proj_text = f"{proj.get('kind')} ({proj.get('in_features')} → {proj.get('out_features')})"
    rows = [
        ("base LLM", facts["base_llm"]),
        ("model preset", facts["model_preset"]),
        ("vision tower", vision_text),
        ("projector", proj_text),
        ("LoRA", lora_text),
        ("training run", f"{facts['run_name'] or '?'} ({facts['run_dir'] or 'run directory not found'})"),
        ("checkpoint", facts["checkpoint"]),
        ("stage", f"{facts['stage'] or '?'} (trains: {trains})"),
        ("data", data_text),
        ("initialised from", facts["init_from"] or "—"),
        ("seed", facts["seed"]),
        ("template", f"{facts['template']} (tokenizer chat template: {facts['chat_template']})"),
        ("lvlm version", facts.get("lvlm_version", "?")),
    ]
    table = ["| | |", "|---|---|", *(f"| {k} | {str(v).replace('|', '/')} |" for k, v in rows)]
    usage = [
        "```python",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        'tokenizer = AutoTokenizer.from_pretrained("llm")',
        'model = AutoModelForCausalLM.from_pretrained("llm")',
        'messages = [{"role": "user", "content": "If a movie review is positive, ..."}]',
        "ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors='pt')",
        "print(tokenizer.decode(model.generate(ids, max_new_tokens=8)[0, ids.shape[1]:]))",
        "```",
    ]
    body = [
        f"# {facts['run_name'] or 'lvlm export'}",
        "",
        "The language model of an LVLM trained with lvlm (vision tower → projector → LLM), exported by "
        "`python export.py` so that `transformers` alone loads it.",
        "",
        *table,
        "",
        "## Files",
        "",
        "- `llm/`: the LLM (`config.json`, `model.safetensors`, `generation_config.json`) and its tokenizer "
        "with the chat template of the training template (the default system prompt, if any, is used when "
        "the conversation has no system message).",
        "- `projector.safetensors`: the projector weights (kind and shapes in the file's metadata).",
        "- `vision_config.json`: the vision tower config of the checkpoint's base model (images are encoded "
        "by that tower, second-to-last layer, CLS dropped, then projected).",
        "- `export.json`: these facts as JSON.",
        *(
            [
                "- `llava_hf/`: the whole LVLM as `LlavaForConditionalGeneration` with its `LlavaProcessor` "
                "(`transformers` loads it with `AutoModelForImageTextToText`)."
            ]
            if facts.get("llava_hf") == "llava_hf"
            else []
        ),
        "",
        "## Use",
        "",
        *usage,
        "",
        "Or score it with the benchmark: `python evaluate.py model.kind=hf model.name_or_path=<this>/llm`.",
        "",
        "## Licence",
        "",
        LLAMA2_LICENSE if llama2 else RANDOM_LICENSE,
        "Vision towers: CLIP (MIT). Training data keep their own terms (COCO annotations CC BY 4.0; data "
        "generated with an API model fall under that provider's terms of use). lvlm's code: Apache-2.0.",
        "",
    ]
    return "\n".join(front + body)
