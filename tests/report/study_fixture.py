"""A small synthetic study written with the real result writer (``lvlm.eval.results.writer.write_results``).

Three rows: ``base`` (1 seed, named by a ``study.json`` beside results.json), ``fovit`` (2 seeds in
``seed1``/``seed2`` folders, named by the ``study`` key inside results.json, label "LVLM FOVIT") and
``nofovit`` (1 seed, no study object: row from its folder, seed from ``config.seed``). Each row answers
with its own accuracy per label system, so the table has distinct, known values.
"""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from pathlib import Path

from lvlm.eval.results.writer import BootstrapSettings, write_results
from lvlm.eval.types import INVALID, LABEL_SYSTEMS, Prediction, PromptItem

TASKS = ("sst2", "rte")
SETS = {
    "natural": {"natural_golden": ("positive", "negative"), "natural_1_0": ("1", "0")},
    "neutral": {"neutral_foo_bar": ("foo", "bar"), "neutral_bar_foo": ("bar", "foo")},
    "unnatural": {"unnatural_golden_swapped": ("negative", "positive"), "unnatural_0_1": ("0", "1")},
}
N_EXAMPLES = 30
STUDY_NAME = "demo-study"
# row → (P(correct) per label system, P(invalid))
SKILL = {
    "base": ({"natural": 0.9, "neutral": 0.7, "unnatural": 0.3}, 0.05),
    "fovit": ({"natural": 0.85, "neutral": 0.75, "unnatural": 0.5}, 0.02),
    "nofovit": ({"natural": 0.8, "neutral": 0.6, "unnatural": 0.2}, 0.1),
}


def synthetic_run(row: str, seed: int) -> tuple[list[PromptItem], list[Prediction]]:
    """Aligned prompt items and predictions of one (row, seed)."""
    correct, invalid = SKILL[row]
    rng = random.Random(f"{row}-{seed}")
    items, predictions = [], []
    for task in TASKS:
        for uid in range(N_EXAMPLES):
            gold = uid % 2
            for system in LABEL_SYSTEMS:
                for name, words in SETS[system].items():
                    items.append(
                        PromptItem(task, str(uid), name, system, f"{task} {uid} {words}", words, gold)
                    )
                    draw = rng.random()
                    label = (
                        INVALID if draw < invalid else gold if draw < invalid + correct[system] else 1 - gold
                    )
                    raw = "unsure" if label == INVALID else words[label]
                    predictions.append(Prediction(strict=label, lenient=label, raw=raw))
    return items, predictions


def write_run(run_dir: Path, row: str, seed: int, config_seed: int = 0, smoke: bool = False) -> Path:
    """Write one evaluation's result files into ``run_dir``; returns its results.json."""
    items, predictions = synthetic_run(row, seed)
    config = {
        "seed": config_seed,
        "eval": {
            "tasks": list(TASKS),
            "verbalizer_sets": {s: {n: list(w) for n, w in SETS[s].items()} for s in SETS},
        },
    }
    files = write_results(
        run_dir,
        items=items,
        predictions=predictions,
        config=config,
        model_fingerprint=f"{row}-{seed}".ljust(64, "0"),
        template_hash="t",
        verbalizer_hash="v",
        scorer="generate",
        bootstrap=BootstrapSettings(n_resamples=200, seed=0),
        commit="fixture",
        data={task: {"is_smoke": smoke, "source": "smoke" if smoke else "local"} for task in TASKS},
    )
    return files.results_json


def add_study_key(results_json: Path, study: Mapping[str, object]) -> None:
    """What the study runner does: add a top-level ``study`` object to results.json."""
    payload = json.loads(results_json.read_text(encoding="utf-8"))
    payload["study"] = dict(study)
    results_json.write_text(json.dumps(payload, sort_keys=True, indent=2) + "\n", encoding="utf-8")


def write_study(root: Path) -> Path:
    """The three-row study under ``root``; returns ``root``."""
    base = write_run(root / "base", "base", 0)
    (base.parent / "study.json").write_text(
        json.dumps({"name": STUDY_NAME, "row": "base", "label": "LLM (base)", "seed": 0}), encoding="utf-8"
    )
    (base.parent / "config.yaml").write_text("seed: 0\nmodel:\n  kind: hf\n", encoding="utf-8")
    for seed in (1, 2):
        results = write_run(root / "fovit" / f"seed{seed}", "fovit", seed)
        add_study_key(
            results,
            {
                "name": STUDY_NAME,
                "row": "fovit",
                "label": "LVLM FOVIT",
                "seed": seed,
                "condition_tags": ["fovit"],
            },
        )
    (root / "fovit" / ".hydra").mkdir(parents=True)
    (root / "fovit" / ".hydra" / "config.yaml").write_text("seed: 0\n", encoding="utf-8")
    write_run(root / "nofovit", "nofovit", 3, config_seed=3)
    return root


def summary_of(results_json: Path) -> dict[str, dict[str, float]]:
    return json.loads(results_json.read_text(encoding="utf-8"))["summary"]
