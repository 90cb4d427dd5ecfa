"""Building FOVIT / NoFOVIT / FOIT / NoFOIT end to end: inputs → plan → stages → datasets → cards.

``build_datasets(cfg)`` takes the ``build_data`` config (``conf/build_data.yaml``): it lists the input images
(a folder, or the synthetic scenes for the offline default), samples ``sample_size`` of them with the seed,
assigns each one of the format instructions (balanced: every instruction used equally often, ±1), runs the
caption, question-answer and answer stages (resumable, see ``stages``), writes the four datasets and their
cards, and returns name → dataset directory. ``stages/plan.json`` fingerprints the settings that determine
the content; resuming with different settings is refused with one line. ``ensure_dataset(name, cfg)`` is what
training calls: it returns an existing dataset or builds it first.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lvlm.construction.backends.base import Generator, ImageItem, get_backend, make_generator
from lvlm.construction.backends.llm import merge_usage
from lvlm.construction.pipeline import cards
from lvlm.construction.pipeline import datasets as ds
from lvlm.construction.pipeline.inputs import (
    assign_instructions,
    load_instructions,
    resolve_inputs,
    sample_items,
)
from lvlm.construction.pipeline.stages import (
    Record,
    StageRunner,
    answer_stage,
    caption_stage,
    failure_summary,
    question_answer_stage,
)
from lvlm.errors import ConfigError, DataError

log = logging.getLogger(__name__)
STAGES_DIR = "stages"


def _as_config(cfg: Any) -> DictConfig:
    return cfg if isinstance(cfg, DictConfig) else OmegaConf.create(cfg)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def fingerprint(cfg: DictConfig, generator: Generator, items: list[ImageItem], assignments: dict) -> dict:
    """The settings that determine the generated content; a resume must match them exactly."""
    info = generator.describe()
    return {
        "backend": info["backend"],
        "models": info["models"],
        "params": _digest(info.get("params")),
        "prompts": _digest(info.get("prompts")),
        "seed": int(cfg.seed),
        "items": _digest([[item.id, str(item.path)] for item in items]),
        "instructions": _digest(assignments),
    }


def check_plan(stages_dir: Path, current: dict[str, Any]) -> None:
    """Write ``plan.json`` on the first run; refuse to resume under different settings."""
    plan_path = stages_dir / "plan.json"
    if plan_path.exists():
        stored = json.loads(plan_path.read_text(encoding="utf-8")).get("fingerprint", {})
        changed = sorted(key for key in current.keys() | stored.keys() if stored.get(key) != current.get(key))
        if changed:
            raise ConfigError(
                f"{plan_path}: the finished stages were built with different {', '.join(changed)}; fix: use "
                "another output_dir, restore the old settings, or set overwrite=true to rebuild from scratch"
            )
        return
    ds.write_json_atomic(plan_path, {"fingerprint": current})


def clear_outputs(output_dir: Path, names: list[str]) -> None:
    """``overwrite=true``: remove the stage records and the dataset folders this build owns."""
    for sub in [STAGES_DIR, *names]:
        target = output_dir / sub
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.is_dir():
            shutil.rmtree(target)


async def run_stages(
    cfg: DictConfig,
    generator: Generator,
    runner: StageRunner,
    items: list[ImageItem],
    plan: tuple[dict[str, str], dict[str, Any]],
) -> dict[str, dict[str, Record]]:
    """Captions, then question + formatted answer, then the plain answer; only items that passed go on."""
    from lvlm.construction.catalogue.checkers import check

    assignments, library = plan
    retries = int(cfg.max_format_retries)
    release_interrupts = runner.catch_interrupts()
    try:
        caps = await runner.run("caption", items, lambda item: caption_stage(generator, item))
        with_caption = [item for item in items if caps.get(item.id, {}).get("status") == "ok"]
        qas = await runner.run(
            "question_answer",
            with_caption,
            lambda item: question_answer_stage(
                generator, item, caps[item.id]["caption"], library[assignments[item.id]], check, retries
            ),
        )
        with_qa = [item for item in with_caption if qas.get(item.id, {}).get("status") == "ok"]
        answers = await runner.run(
            "answer",
            with_qa,
            lambda item: answer_stage(generator, item, caps[item.id]["caption"], qas[item.id]["question"]),
        )
    finally:
        release_interrupts()
        await generator.aclose()
    return {"caption": caps, "question_answer": qas, "answer": answers}


def _record_usage(stages_dir: Path, generator: Generator, seconds: float) -> dict[str, Any]:
    """Append this run's usage to ``stages/usage.jsonl``; return the sum over all runs."""
    path = stages_dir / "usage.jsonl"
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"seconds": round(seconds, 2), **generator.usage_summary()}) + "\n")
    runs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {**merge_usage(runs), "runs": len(runs)}


def _dataset_names(cfg: DictConfig) -> list[str]:
    names = [str(name) for name in (cfg.get("datasets") or ds.DATASET_NAMES)]
    for name in names:
        ds.DATASETS.get(name)  # raises UnknownNameError listing the four names
    return names


def _construction_config(cfg: DictConfig) -> DictConfig:
    """The resolved backend config with the build seed (interpolations resolved against the full config)."""
    construction = OmegaConf.create(OmegaConf.to_container(cfg.construction, resolve=True))
    missing = sorted(OmegaConf.missing_keys(construction))
    if missing:
        keys = ", ".join(f"construction.{key}" for key in missing)
        raise ConfigError(
            f"{keys}: required for backend '{construction.backend}'; "
            f"fix: pass construction.{missing[0]}=<value>"
        )
    get_backend(str(construction.backend))  # an unknown name raises, listing the valid backends
    if construction.get("seed") is None:
        construction.seed = int(cfg.seed)
    return construction


def build_datasets(cfg: Any) -> dict[str, Path]:
    """Build (or finish building) the configured datasets; returns name → dataset directory."""
    cfg = _as_config(cfg)
    names = _dataset_names(cfg)
    output_dir = Path(str(cfg.output_dir)).expanduser()
    if cfg.get("overwrite"):
        clear_outputs(output_dir, list(ds.DATASET_NAMES))  # the stages are shared by all four
    stages_dir = output_dir / STAGES_DIR
    stages_dir.mkdir(parents=True, exist_ok=True)
    construction = _construction_config(cfg)
    available, source_dir = resolve_inputs(construction)
    items = sample_items(available, construction.get("sample_size"), int(cfg.seed))
    library = load_instructions(cfg)
    by_id = {instruction.id: instruction for instruction in library}
    assignments = assign_instructions(items, library, int(cfg.seed))
    generator = make_generator(construction)
    try:
        check_plan(stages_dir, fingerprint(cfg, generator, items, assignments))
    except ConfigError:
        asyncio.run(generator.aclose())
        raise
    runner = StageRunner(
        stages_dir,
        concurrency=int(construction.get("concurrency", 4)),
        show_progress=bool(cfg.get("progress", True)),
        max_consecutive_failures=int(cfg.get("max_consecutive_failures", 10)),
    )
    started = time.time()
    try:
        records = asyncio.run(run_stages(cfg, generator, runner, items, (assignments, by_id)))
    finally:
        usage = _record_usage(stages_dir, generator, time.time() - started)
    context = {
        "construction": construction,
        "library": library,
        "records": records,
        "source_dir": source_dir,
        "available": len(available),
        "items": items,
        "generator_info": generator.describe(),
        "usage": usage,
        "reports": runner.reports,
    }
    return write_outputs(cfg, names, context)


def write_outputs(cfg: DictConfig, names: list[str], context: dict[str, Any]) -> dict[str, Path]:
    """Assemble verified samples, write the datasets and their cards."""
    from lvlm.construction.catalogue.checkers import check
    from lvlm.construction.catalogue.instructions import instruction_distribution

    by_id = {instruction.id: instruction for instruction in context["library"]}
    samples, skips = ds.assemble_samples(context["items"], context["records"], by_id, check)
    if not samples:
        failures = failure_summary(context["reports"])
        raise DataError(
            str(Path(str(cfg.output_dir)) / STAGES_DIR),
            f"no item survived construction (dropped: {dict(skips)})"
            + (f"; backend failures: {failures}" if failures else ""),
            "check the input images and the backend, then rerun",
        )
    paths = ds.write_all(samples, Path(str(cfg.output_dir)), str(cfg.image_mode), names)
    facts = cards.shared_facts(cfg, context, samples, skips)
    for name, directory in paths.items():
        spec = ds.DATASETS.get(name)
        if spec.formatted:
            save_library_atomic(context["library"], directory / "format_instructions.json")
        cards.write_card(directory, cards.build_card(spec, samples, facts, instruction_distribution))
    return paths


def save_library_atomic(library: list[Any], path: Path) -> None:
    from lvlm.construction.catalogue.instructions import save_library

    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_library(library, tmp)
    os.replace(tmp, path)


def ensure_dataset(name: str, cfg: Any) -> Path:
    """The directory of dataset ``name``, built first (all four at once) if it has no train.json yet.

    ``cfg`` is either a full ``build_data`` config (with ``output_dir`` and ``construction``) or a training
    ``data`` config (``conf/data/fovit.yaml``: ``root`` = where the datasets live, optional ``cache_dir`` and
    ``build_overrides``, a list of ``build_data`` overrides such as ``["construction=openai", ...]``); the
    latter builds with the offline default unless overridden.
    """
    spec = ds.DATASETS.get(name)
    build_cfg = as_build_config(cfg)
    directory = Path(str(build_cfg.output_dir)).expanduser() / spec.name
    if (directory / "train.json").is_file() and (directory / "card.json").is_file():
        return directory
    backend = build_cfg.construction.backend
    log.info("dataset %s not found in %s; building it with backend %s", name, directory.parent, backend)
    return build_datasets(build_cfg)[spec.name]


def as_build_config(cfg: Any) -> DictConfig:
    """A ``build_data`` config from either a build config or a training ``data`` config."""
    cfg = _as_config(cfg)
    if "output_dir" in cfg and "construction" in cfg:
        return cfg
    if not cfg.get("root"):
        raise ConfigError("the data config needs 'root' (the folder holding fovit/, nofovit/, ...)")
    build_cfg = compose_build_config(list(cfg.get("build_overrides") or []))
    build_cfg.output_dir = str(cfg.root)
    if cfg.get("cache_dir"):
        build_cfg.paths.cache_dir = str(cfg.cache_dir)
    return build_cfg


def compose_build_config(overrides: list[str] | tuple[str, ...] = (), root: Path | None = None) -> DictConfig:
    """``conf/build_data.yaml`` composed outside ``build_data.py`` (e.g. by training for ``ensure_dataset``).

    ``paths.root`` is ``root`` when given, else the shared default (``LVLM_ROOT`` or the project root).
    Works both inside another Hydra app and standalone.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from lvlm.utils.runtime import PROJECT_ROOT

    given = list(overrides)
    if root is not None and not any(item.startswith("paths.root=") for item in given):
        given.insert(0, f"paths.root={root}")
    if GlobalHydra.instance().is_initialized():
        return compose("build_data", overrides=given)
    with initialize_config_dir(str(PROJECT_ROOT / "conf"), version_base="1.3"):
        return compose("build_data", overrides=given)
