"""Dataset cards: ``card.json`` (machine-readable) and ``card.md`` (the same facts for people).

A card records what a dataset is (model input and target as listed in ``docs/construction.md``, format,
image handling, its FO/NoFO partner), how many samples it holds and why items were dropped (by stage and
reason), the format-instruction distribution, the compliance rate of formatted answers (first try and after
regeneration), answer length statistics in words for FO and NoFO answers, the backend and model ids, every
prompt template, seeds, and token usage and cost summed over all runs of the build. It never holds an API
key: only the name of the variable read.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lvlm.construction.backends.base import get_backend, word_count
from lvlm.construction.pipeline.datasets import (
    PAIRS,
    DatasetSpec,
    Sample,
    write_json_atomic,
    write_text_atomic,
)


def length_stats(texts: Sequence[str]) -> dict[str, float]:
    """Word counts: mean, median and 95th percentile (nearest rank); zeros for no texts."""
    counts = sorted(word_count(text) for text in texts)
    if not counts:
        return {"count": 0, "mean": 0.0, "median": 0.0, "p95": 0.0}
    p95 = counts[max(0, math.ceil(0.95 * len(counts)) - 1)]
    return {
        "count": len(counts),
        "mean": round(statistics.fmean(counts), 2),
        "median": float(statistics.median(counts)),
        "p95": float(p95),
    }


def compliance_stats(qa_records: Mapping[str, dict]) -> dict[str, Any]:
    """Format compliance over every item that reached the question-answer stage."""
    attempted = len(qa_records)
    ok = [r for r in qa_records.values() if r.get("status") == "ok"]
    first_try = sum(1 for r in ok if r.get("attempts") == 1)
    attempts = Counter(str(r.get("attempts", 0)) for r in qa_records.values())
    return {
        "attempted": attempted,
        "compliant_first_try": first_try,
        "compliant_after_retries": len(ok),
        "first_try_rate": round(first_try / attempted, 4) if attempted else 0.0,
        "after_retries_rate": round(len(ok) / attempted, 4) if attempted else 0.0,
        "regenerated": sum(1 for r in ok if r.get("attempts", 1) > 1),
        "attempts_histogram": dict(sorted(attempts.items())),
    }


def provenance(backend: str, generator_info: Mapping[str, Any]) -> str:
    """Where the content comes from and whose terms apply (``Backend.provenance``; see
    ``docs/construction.md``); no licence is inferred for images."""
    return get_backend(backend).provenance(generator_info)


def shared_facts(
    cfg: Any, context: Mapping[str, Any], samples: Sequence[Sample], skips: Mapping[str, int]
) -> dict:
    """Card facts common to the four datasets (``context`` is assembled by ``build.build_datasets``)."""
    from lvlm.construction.catalogue.instructions import instruction_distribution

    construction, library = context["construction"], context["library"]
    qa_records = context["records"]["question_answer"]
    return {
        "image_mode": str(cfg.image_mode),
        "images_dir": str(context["source_dir"]),
        "answer_length_words": {
            "fo": length_stats([s.fo_answer for s in samples]),
            "nofo": length_stats([s.nofo_answer for s in samples]),
        },
        "compliance": compliance_stats(qa_records),
        "skipped": {"total": sum(skips.values()), **dict(sorted(skips.items()))},
        "sampling": {
            "images_available": context["available"],
            "sample_size_requested": construction.get("sample_size"),
            "sampled": len(context["items"]),
            "completed": len(samples),
        },
        "instruction_library": {"size": len(library), "distribution": instruction_distribution(library)},
        "generator": context["generator_info"],
        "usage": context["usage"],
        "seeds": {
            "seed": int(cfg.seed),
            "instructions_seed": int((cfg.get("instructions") or {}).get("seed", 0)),
            "generator_seed": construction.get("seed"),
        },
        "built_with": {"max_format_retries": int(cfg.max_format_retries), "backend": construction.backend},
        "provenance": provenance(str(construction.backend), context["generator_info"]),
        "last_run": {
            report.name: {
                "items": report.total,
                "finished_before": report.finished_before,
                "finished_now": report.finished_now,
                "backend_failures": dict(report.failures),
                "last_failure": dict(report.last_by_kind),
            }
            for report in context["reports"]
        },
    }


def build_card(
    spec: DatasetSpec,
    samples: Sequence[Sample],
    build: Mapping[str, Any],
    distribution: Callable[[list[Any]], Any],
) -> dict[str, Any]:
    """The card of one dataset; ``build`` holds the facts shared by all four (see ``build.py``)."""
    card: dict[str, Any] = {
        "name": spec.name,
        "format": "llava",
        "model_input": spec.model_input,
        "target": spec.target,
        "modality": "image" if spec.vision else "caption text",
        "paired_with": PAIRS[spec.name],
        "num_samples": len(samples),
        "files": ["train.json", "meta.jsonl", *(["images/"] if spec.vision else [])],
    }
    if spec.vision:
        card["images"] = {"mode": build["image_mode"], "path": "images/", "source_dir": build["images_dir"]}
    if spec.formatted:
        card["instruction_distribution"] = distribution([s.instruction for s in samples])
        card["distinct_instructions"] = len({s.instruction.id for s in samples})
    card.update({key: build[key] for key in _SHARED_KEYS if key in build})
    return card


_SHARED_KEYS = (
    "answer_length_words",
    "compliance",
    "skipped",
    "sampling",
    "instruction_library",
    "generator",
    "usage",
    "seeds",
    "built_with",
    "provenance",
    "last_run",
)


def _table(rows: Mapping[str, Any], header: tuple[str, str] = ("key", "value")) -> list[str]:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {key} | {value} |" for key, value in rows.items()]
    return lines


def _overview(card: Mapping[str, Any]) -> list[str]:
    lines = [
        f"# Dataset card: {card['name']}",
        "",
        f"LLaVA-format fine-tuning data. Model input: **{card['model_input']}**; "
        f"target: **{card['target']}**. "
        f"Paired with `{card['paired_with']}` (same ids, images and questions).",
        "",
        f"Samples: **{card['num_samples']}**. Files: {', '.join(card['files'])}.",
    ]
    if "images" in card:
        images = card["images"]
        lines += ["", f"Images: `{images['mode']}` of `{images['source_dir']}` into `images/`."]
    if card.get("provenance"):
        lines += ["", f"Provenance and terms: {card['provenance']}"]
    return lines


def _statistics(card: Mapping[str, Any]) -> list[str]:
    lines: list[str] = []
    for title, key in (
        ("Sampling", "sampling"),
        ("Compliance of formatted answers", "compliance"),
        ("Seeds", "seeds"),
        ("Usage (summed over all runs)", "usage"),
    ):
        if card.get(key):
            lines += ["", f"## {title}", "", *_table(card[key])]
    lines += [
        "",
        "## Answer length (words)",
        "",
        "| answers | count | mean | median | p95 |",
        "|---|---|---|---|---|",
    ]
    for which, stats in card.get("answer_length_words", {}).items():
        lines.append(f"| {which} | {stats['count']} | {stats['mean']} | {stats['median']} | {stats['p95']} |")
    lines += ["", "## Skipped items (stage:reason)", "", *_table(card.get("skipped") or {"total": 0})]
    if "instruction_distribution" in card:
        lines += ["", "## Format-instruction kinds used", ""]
        lines += _table(card["instruction_distribution"], ("kind", "samples"))
    return lines


def _generator(card: Mapping[str, Any]) -> list[str]:
    generator = card.get("generator", {})
    lines = [
        "",
        "## Generator",
        "",
        f"Backend `{generator.get('backend')}`; models: {generator.get('models')}.",
    ]
    for role, template in generator.get("prompts", {}).items():
        lines += ["", f"### Prompt `{role}`", "", "```text", str(template), "```"]
    return lines


def render_markdown(card: Mapping[str, Any]) -> str:
    """A readable card.md with the same facts as card.json."""
    return "\n".join([*_overview(card), *_statistics(card), *_generator(card)]) + "\n"


def write_card(directory: Path, card: Mapping[str, Any]) -> None:
    write_json_atomic(directory / "card.json", card)
    write_text_atomic(directory / "card.md", render_markdown(card))
