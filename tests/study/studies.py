"""Tiny study files for the runner tests (tiny default model, a few steps, a small evaluation)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

TINY: dict[str, Any] = {
    "name": "tiny_study",
    "description": "runner test: tiny model, 4 steps per row",
    "seeds": [0],
    "train_defaults": [
        "trainer.max_steps=4", "data.synthetic.num_scenes=32", "trainer.num_sanity_val_steps=0",
    ],
    "eval_defaults": ["eval.limit=2", "eval.tasks=[sst2]"],
    "rows": {
        "base": {"label": "LLM (tiny)", "tags": ["llm"], "train": ["stage=text_finetune"]},
        "stage1": {"train": ["stage=pretrain", "data.synthetic.max_turns=1"], "evaluate": False},
        "fovit": {
            "label": "LVLM FOVIT (tiny)", "tags": ["vit", "fo"], "train": ["stage=finetune"],
            "llm_from": "base", "init_from": "stage1",
        },
    },
    "report": {"base": "base", "wandb": False},
}  # fmt: skip
TINY_STEPS = [
    "train/base/s0", "train/stage1/s0", "export/base/s0", "train/fovit/s0", "eval/base/s0", "eval/fovit/s0",
    "report",
]  # fmt: skip


def tiny_study(**changes: Any) -> dict[str, Any]:
    """A copy of ``TINY``; ``rows__<row>={...}`` replaces a row (``None`` removes it), others set keys."""
    study = copy.deepcopy(TINY)
    for key, value in changes.items():
        if key.startswith("rows__"):
            row = key.removeprefix("rows__")
            if value is None:
                study["rows"].pop(row, None)
            else:
                study["rows"][row] = value
        else:
            study[key] = value
    return study


def write_study(folder: Path, study: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.yaml"
    path.write_text(yaml.safe_dump(study or TINY, sort_keys=False), encoding="utf-8")
    return path


def expected_steps(raw: dict[str, Any]) -> dict[str, set[str]]:
    """The contract's step graph derived from a raw study file, independently of lvlm.study."""
    seeds = raw.get("seeds") or [0]
    rows = {name: row or {} for name, row in raw["rows"].items()}
    steps: dict[str, set[str]] = {}
    if raw.get("build") is not None:
        steps["build"] = set()
    for name, row in rows.items():
        if row.get("train") is None:
            continue
        for seed in seeds:
            deps = set()
            if row.get("llm_from"):
                deps.add(f"export/{row['llm_from']}/s{seed}")
            if row.get("init_from"):
                deps.add(f"train/{row['init_from']}/s{seed}")
            if row.get("needs_build"):
                deps.add("build")
            steps[f"train/{name}/s{seed}"] = deps
    for name in {row["llm_from"] for row in rows.values() if row.get("llm_from")}:
        for seed in seeds:
            steps[f"export/{name}/s{seed}"] = {f"train/{name}/s{seed}"}
    evals = set()
    for name, row in rows.items():
        if row.get("evaluate", []) is False:
            continue
        trained = row.get("train") is not None
        for seed in seeds if trained else seeds[:1]:
            steps[f"eval/{name}/s{seed}"] = {f"train/{name}/s{seed}"} if trained else set()
            evals.add(f"eval/{name}/s{seed}")
    steps["report"] = evals
    return steps
