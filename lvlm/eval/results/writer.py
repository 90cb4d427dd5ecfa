"""Result files of one verbalizer-benchmark evaluation: results.json, samples.jsonl, results.md.

``write_results`` turns aligned prompt items and predictions into:

* ``results.json``: config, model fingerprint, git hash, template/verbalizer hashes, scorer, parse mode and
  parse scope, the model's prompt ``wrapping``, bootstrap settings, a top-level ``summary``
  (``natural``/``neutral``/``unnatural``/``all``, F1 as a fraction with CI bounds, invalid rates and
  ``n_past_first_line``, the answers found only past the first line), the same per parse mode, and per-task
  and per-set metrics.
  It is deterministic: keys sorted, floats rounded to 6 decimals, no timestamps, so the same predictions
  give a byte-identical file.
* ``run_info.json``: the VOLATILE facts (time written, anything passed as ``volatile`` such as durations);
  never compare it across runs.
* ``samples.jsonl``: one line per prediction, in item order.
* ``results.md``: the paper-style table (F1 × 100 with CI per label system and All) and a per-task table.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from lvlm.eval.results.bootstrap import ConfidenceInterval, bootstrap_cis
from lvlm.eval.results.metrics import PARSE_MODES, BenchmarkMetrics, GroupScore, compute_metrics
from lvlm.eval.types import INVALID, LABEL_SYSTEMS, Prediction, PromptItem
from lvlm.utils.config import to_plain

SCHEMA_VERSION = 1
SUMMARY_KEYS = (*LABEL_SYSTEMS, "all")
_DIGITS = 6


@dataclass(frozen=True)
class BootstrapSettings:
    n_resamples: int = 1000
    seed: int = 0
    confidence: float = 0.95
    unit: str = "example"


@dataclass(frozen=True)
class ResultFiles:
    results_json: Path
    samples_jsonl: Path
    results_md: Path
    run_info_json: Path
    results: dict[str, object]


def git_hash(directory: str | Path | None = None) -> str:
    """The commit checked out in ``directory`` (default: this package's checkout), or ``"unknown"``."""
    where = Path(directory) if directory is not None else Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def plain_config(config: Mapping[str, object] | None) -> object:
    """A JSON-ready copy of ``config`` (resolved by ``lvlm.utils.config.to_plain``, then JSON-normalised)."""
    return json.loads(json.dumps(to_plain(config), default=str, sort_keys=True))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), _DIGITS)


def _group_dict(score: GroupScore) -> dict[str, object]:
    return {
        "n": score.n,
        "f1": _rounded(score.f1),
        "accuracy": _rounded(score.accuracy),
        "invalid_rate": _rounded(score.invalid_rate),
    }


def past_first_line_counts(
    items: Sequence[PromptItem], predictions: Sequence[Prediction], mode: str
) -> dict[str, int]:
    """Per label system and ``all``: answers whose ``mode`` label was found only past the first line.

    A prediction counts when its label is valid and differs from the parse of its first non-blank line alone
    (``Prediction.extra["first_line"]``, written by the generate scorer; other scorers count 0).
    """
    index = {"strict": 0, "lenient": 1}[mode]
    counts = {system: 0 for system in LABEL_SYSTEMS}
    for item, prediction in zip(items, predictions, strict=True):
        first = prediction.extra.get("first_line") if isinstance(prediction.extra, Mapping) else None
        label = getattr(prediction, mode)
        known = isinstance(first, (list, tuple)) and len(first) == 2
        if known and label != INVALID and label != first[index]:
            counts[item.system] += 1
    return counts | {"all": sum(counts.values())}


def summary_dict(
    metrics: BenchmarkMetrics,
    intervals: Mapping[str, ConfidenceInterval],
    past_first_line: Mapping[str, int] | None = None,
) -> dict[str, object]:
    """``natural``/``neutral``/``unnatural``/``all`` → F1 (fraction), CI bounds, mean set F1, invalid rate
    and (with ``past_first_line``) ``n_past_first_line``."""
    past = dict(past_first_line or {})
    summary: dict[str, object] = {}
    for system, score in metrics.by_system.items():
        entry = _group_dict(score.pooled) | {
            "mean_set_f1": _rounded(score.mean_set_f1),
            "n_sets": score.n_sets,
        }
        if past:
            entry["n_past_first_line"] = past.get(system, 0)
        summary[system] = entry | _interval_dict(intervals.get(system))
    if metrics.all_f1 is not None:
        summary["all"] = {
            "f1": _rounded(metrics.all_f1),
            "mean_set_f1": _rounded(metrics.all_mean_set_f1),
            "invalid_rate": _rounded(
                sum(summary[s]["invalid_rate"] for s in LABEL_SYSTEMS) / len(LABEL_SYSTEMS)
            ),
            "invalid_rate_pooled": _rounded(metrics.overall.invalid_rate),
            "n": metrics.overall.n,
        } | _interval_dict(intervals.get("all"))
        if past:
            summary["all"]["n_past_first_line"] = past.get("all", 0)
    return summary


def _interval_dict(interval: ConfidenceInterval | None) -> dict[str, float | None]:
    if interval is None:
        return {"f1_ci_low": None, "f1_ci_high": None}
    return {"f1_ci_low": _rounded(interval.low), "f1_ci_high": _rounded(interval.high)}


def _per_task(metrics: BenchmarkMetrics) -> dict[str, object]:
    return {
        task: {system: _group_dict(score) for system, score in systems.items()}
        | {"all": {"f1": _rounded(metrics.by_task_all[task])}}
        for task, systems in metrics.by_task.items()
    }


def _per_set(
    metrics: BenchmarkMetrics, words: Mapping[tuple[str, str], tuple[str, str]]
) -> dict[str, object]:
    return {
        f"{task}/{name}": _group_dict(score)
        | {
            "task": task,
            "set": name,
            "system": metrics.set_systems[(task, name)],
            "words": list(words[(task, name)]),
        }
        for (task, name), score in metrics.by_set.items()
    }


def build_results(
    items: Sequence[PromptItem],
    predictions: Sequence[Prediction],
    *,
    identity: Mapping[str, object],
    mode: str = "lenient",
    bootstrap: BootstrapSettings = BootstrapSettings(),
) -> tuple[dict[str, object], BenchmarkMetrics]:
    """The results.json payload (and the primary-mode metrics) of aligned items and predictions."""
    by_mode = {}
    for parse_mode in PARSE_MODES:
        metrics = compute_metrics(items, predictions, mode=parse_mode)
        intervals = bootstrap_cis(
            items,
            predictions,
            mode=parse_mode,
            n_resamples=bootstrap.n_resamples,
            seed=bootstrap.seed,
            confidence=bootstrap.confidence,
            unit=bootstrap.unit,
        )
        by_mode[parse_mode] = (metrics, intervals, past_first_line_counts(items, predictions, parse_mode))
    metrics, intervals, past = by_mode[mode]
    words = {(item.task, item.set_name): item.words for item in items}
    payload = dict(identity) | {
        "schema_version": SCHEMA_VERSION,
        "parse_mode": mode,
        "bootstrap": {
            "n_resamples": bootstrap.n_resamples,
            "seed": bootstrap.seed,
            "confidence": bootstrap.confidence,
            "unit": bootstrap.unit,
        },
        "n_predictions": len(predictions),
        "n_examples": len({(item.task, item.uid) for item in items}),
        "summary": summary_dict(metrics, intervals, past),
        "summary_by_mode": {name: summary_dict(*pair) for name, pair in by_mode.items()},
        "per_task": _per_task(metrics),
        "per_set": _per_set(metrics, words),
    }
    return payload, metrics


def _label_name(label: int, words: tuple[str, str]) -> str:
    return "INVALID" if label == INVALID else words[label]


def sample_record(item: PromptItem, prediction: Prediction) -> dict[str, object]:
    """One samples.jsonl line: the prompt, raw output, parsed labels and gold of one prediction."""
    loglikelihoods = prediction.loglikelihoods
    return {
        "task": item.task,
        "uid": item.uid,
        "set": item.set_name,
        "system": item.system,
        "words": list(item.words),
        "prompt": item.text,
        "raw": prediction.raw,
        "strict": prediction.strict,
        "lenient": prediction.lenient,
        "strict_label": _label_name(prediction.strict, item.words),
        "lenient_label": _label_name(prediction.lenient, item.words),
        "gold": item.gold,
        "gold_label": item.words[item.gold],
        "loglikelihoods": list(loglikelihoods) if loglikelihoods is not None else None,
    }


def _pct(value: object) -> str:
    return "–" if value is None else f"{100 * float(value):.1f}"


def _f1_with_ci(entry: Mapping[str, object]) -> str:
    if entry.get("f1_ci_low") is None:
        return _pct(entry.get("f1"))
    return f"{_pct(entry['f1'])} [{_pct(entry['f1_ci_low'])}, {_pct(entry['f1_ci_high'])}]"


def render_markdown(payload: Mapping[str, object]) -> str:
    """Paper-style tables: label systems + All (F1 × 100 with CI), then F1 × 100 per task."""
    boot = payload["bootstrap"]
    scope = payload.get("parse_scope")
    lines = [
        "# Verbalizer manipulation results",
        "",
        f"Scorer `{payload['scorer']}`, parse mode `{payload['parse_mode']}`"
        + (f" over the {'whole answer' if scope == 'answer' else 'first line'} (`{scope}`)" if scope else "")
        + ", "
        f"{payload['n_predictions']} predictions on {payload['n_examples']} examples. "
        "F1 × 100 (macro over the two labels, invalid answers match neither) with "
        f"{100 * boot['confidence']:.0f} % bootstrap CI ({boot['n_resamples']} resamples of "
        f"{boot['unit']}s, seed {boot['seed']}). Model `{str(payload['model_fingerprint'])[:12]}`.",
        *_wrapping_lines(payload.get("wrapping")),
        "",
        "| label system | F1 [CI] | mean F1 over task × set | invalid % | past line 1 | strict F1 | n |",
        "|---|---|---|---|---|---|---|",
    ]
    strict = payload["summary_by_mode"]["strict"]
    for key, entry in payload["summary"].items():
        name = "All" if key == "all" else key.capitalize()
        lines.append(
            f"| {name} | {_f1_with_ci(entry)} | {_pct(entry['mean_set_f1'])} | "
            f"{_pct(entry['invalid_rate'])} | {entry.get('n_past_first_line', '–')} | "
            f"{_pct(strict.get(key, {}).get('f1'))} | {entry['n']} |"
        )
    lines += [
        "",
        "*past line 1*: answers whose label was found only past the first line of the answer.",
    ]
    lines += [
        "",
        "## Per task (F1 × 100)",
        "",
        "| task | Natural | Neutral | Unnatural | All |",
        "|---|---|---|---|---|",
    ]
    for task, systems in payload["per_task"].items():
        cells = [_pct(systems.get(system, {}).get("f1")) for system in SUMMARY_KEYS]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _wrapping_lines(wrapping: object) -> list[str]:
    if not isinstance(wrapping, Mapping):
        return []
    system = wrapping.get("system_prompt")
    system_text = "none" if system is None else json.dumps(system, ensure_ascii=False)
    return [
        "",
        f"Wrapping: template `{wrapping.get('template')}`, system prompt {system_text}, "
        f"image slot `{wrapping.get('image_slot')}`.",
    ]


def _json_text(value: object) -> str:
    return json.dumps(value, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def write_results(
    run_dir: str | Path,
    *,
    items: Sequence[PromptItem],
    predictions: Sequence[Prediction],
    config: Mapping[str, object],
    model_fingerprint: str,
    template_hash: str,
    verbalizer_hash: str,
    scorer: str,
    mode: str = "lenient",
    bootstrap: BootstrapSettings = BootstrapSettings(),
    commit: str | None = None,
    volatile: Mapping[str, object] | None = None,
    data: Mapping[str, object] | None = None,
    parse_scope: str | None = None,
    wrapping: Mapping[str, object] | None = None,
) -> ResultFiles:
    """Write results.json, samples.jsonl, results.md and run_info.json into ``run_dir``.

    ``parse_scope`` (generate scorer) and ``wrapping`` (the model's prompt wrapping: template, system
    prompt, image slot) are recorded when given.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    identity = {
        "config": plain_config(config),
        "model_fingerprint": model_fingerprint,
        "git_hash": commit if commit is not None else git_hash(),
        "hashes": {"templates": template_hash, "verbalizers": verbalizer_hash},
        "scorer": scorer,
    }
    if parse_scope is not None:
        identity["parse_scope"] = parse_scope
    if wrapping is not None:
        identity["wrapping"] = json.loads(json.dumps(dict(wrapping), default=str))
    if data is not None:  # where each task's examples came from; smoke data is flagged at the top level
        identity["data"] = json.loads(json.dumps(data, default=str))
        identity["smoke_data"] = any(bool(v.get("is_smoke")) for v in data.values() if isinstance(v, Mapping))
    payload, _ = build_results(items, predictions, identity=identity, mode=mode, bootstrap=bootstrap)
    files = ResultFiles(
        run_dir / "results.json",
        run_dir / "samples.jsonl",
        run_dir / "results.md",
        run_dir / "run_info.json",
        payload,
    )
    files.results_json.write_text(_json_text(payload), encoding="utf-8")
    with files.samples_jsonl.open("w", encoding="utf-8") as handle:
        for item, prediction in zip(items, predictions, strict=True):
            handle.write(
                json.dumps(sample_record(item, prediction), sort_keys=True, ensure_ascii=False) + "\n"
            )
    files.results_md.write_text(render_markdown(payload), encoding="utf-8")
    info = {"volatile": True, "written_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    files.run_info_json.write_text(_json_text(info | dict(volatile or {})), encoding="utf-8")
    return files
