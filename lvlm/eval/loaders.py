"""One interface over a task's three data sources: local original files, the dataset hub, smoke sets.

``load_examples(spec, data_dir=..., source=..., seed=..., limit=...)`` returns a ``LoadResult``:

- ``source="local"``: ``<data_dir>/<task>/<local.file>`` in its original format (``loaders_local``);
- ``source="hub"``: ``datasets.load_dataset`` with the task's hub mapping (``hub``);
- ``source="smoke"``: the built-in hand-written sets (``lvlm.eval.smoke``), with a loud warning;
- ``source="auto"`` (default): local when ``data_dir`` holds the task's file, else the hub, else smoke.
  Only *unavailability* falls through (no data_dir or file; hub unreachable); a malformed file raises.

The examples are then sampled (``sampling.stratified_sample`` with the task's ``cap`` and ``seed``) and
cut to ``limit``. Dropped classes (neutral, unlabeled) are filtered by definition and counted in
``dropped``; malformed records raise or, with ``on_error="skip"``, are counted in ``skipped``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvlm.errors import ConfigError, DataError
from lvlm.eval import hub
from lvlm.eval.loaders_common import Conversion, MappingRules, to_examples
from lvlm.eval.loaders_local import read_local
from lvlm.eval.sampling import apply_limit, stratified_sample
from lvlm.eval.smoke import smoke_file, smoke_source
from lvlm.eval.tasks import SOURCES, TaskSpec, check_settings, select_tasks
from lvlm.eval.types import Example

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    """A task's examples after sampling and limit, and where they came from."""

    examples: list[Example]
    source: str  # "local:<path>" | "hub:<path>[/<name>]:<split>" | "smoke"
    skipped: dict[str, int]
    is_smoke: bool
    dropped: dict[str, int] = field(default_factory=dict)  # raw label → count, filtered by definition
    available: int = 0  # examples of the kept classes before sampling


class SourceUnavailable(Exception):
    """Internal: this source cannot be used here; ``auto`` tries the next one."""


def _local_path(spec: TaskSpec, data_dir: str | Path | None) -> Path:
    if spec.local is None:
        raise SourceUnavailable(f"task '{spec.name}' defines no local source")
    if data_dir is None:
        raise SourceUnavailable("eval.data_dir is not set")
    path = Path(data_dir).expanduser() / spec.name / spec.local.file
    if not path.is_file():
        raise SourceUnavailable(f"{path}: no such file")
    return path


def _load_local(spec: TaskSpec, data_dir: str | Path | None, on_error: str) -> tuple[Conversion, str]:
    path = _local_path(spec, data_dir)
    assert spec.local is not None
    rules = MappingRules(
        spec.name, spec.local.columns, spec.local.label, f"eval.task_defs.{spec.name}.local", spec.name
    )
    conversion = to_examples(read_local(path, spec.local), rules, source=str(path), on_error=on_error)
    return conversion, f"local:{path}"


def _load_hub(spec: TaskSpec, on_error: str) -> tuple[Conversion, str]:
    if spec.hub is None:
        raise SourceUnavailable(f"task '{spec.name}' defines no hub source")
    try:
        dataset = hub.load_hub_split(spec.hub)
    except hub.HubUnavailable as err:
        raise SourceUnavailable(str(err)) from err
    rules = MappingRules(
        spec.name, spec.hub.columns, spec.hub.label, f"eval.task_defs.{spec.name}.hub", spec.name
    )
    ident = f"hub:{spec.hub.ident}"
    return to_examples(hub.read_hub_records(dataset, spec.hub), rules, source=ident, on_error=on_error), ident


def _load_smoke(spec: TaskSpec) -> tuple[Conversion, str]:
    path = smoke_file(spec.name)
    if not path.is_file():
        raise SourceUnavailable(f"no built-in smoke set for task '{spec.name}'")
    source = smoke_source(spec)
    rules = MappingRules(spec.name, source.columns, source.label, "lvlm/eval/smoke", f"{spec.name}:smoke")
    return to_examples(read_local(path, source), rules, source=str(path), on_error="raise"), "smoke"


def _attempt(kind: str, spec: TaskSpec, data_dir: str | Path | None, on_error: str) -> tuple[Conversion, str]:
    if kind == "local":
        return _load_local(spec, data_dir, on_error)
    if kind == "hub":
        return _load_hub(spec, on_error)
    return _load_smoke(spec)


def _load_raw(
    spec: TaskSpec, data_dir: str | Path | None, source: str, on_error: str
) -> tuple[Conversion, str]:
    """Try the sources in order; only ``auto`` falls through when a source is unavailable."""
    if source not in SOURCES:
        raise ConfigError(f"eval.source: '{source}' is not one of {SOURCES}; fix: pick one of them")
    if source == "local" and data_dir is None:
        raise ConfigError("eval.source=local needs eval.data_dir; fix: set eval.data_dir=<folder>")
    order = ("local", "hub", "smoke") if source == "auto" else (source,)
    reasons: list[str] = []
    for kind in order:
        try:
            return _attempt(kind, spec, data_dir, on_error)
        except SourceUnavailable as err:
            if source != "auto":
                target = f"eval.task_defs.{spec.name}"
                raise DataError(target, str(err), "provide the data or choose another eval.source") from err
            quiet = kind == "local" and data_dir is None  # nothing was asked for, nothing to report
            log.log(
                logging.INFO if quiet else logging.WARNING,
                "task %s: %s source unavailable: %s",
                spec.name,
                kind,
                err,
            )
            reasons.append(f"{kind}: {err}")
    raise DataError(
        f"eval.task_defs.{spec.name}", "; ".join(reasons), "set eval.data_dir or allow hub access"
    )


def _warn_smoke(spec: TaskSpec, count: int) -> None:
    log.warning(
        "!!! SMOKE DATA for task '%s': %d hand-written built-in examples, NOT the real %s split. Scores on "
        "them are meaningless for the paper; set eval.data_dir or allow hub access. !!!",
        spec.name,
        count,
        spec.name,
    )


def load_examples(
    spec: TaskSpec,
    *,
    data_dir: str | Path | None = None,
    source: str = "auto",
    seed: int = 0,
    limit: int | None = None,
    on_error: str = "raise",
) -> LoadResult:
    """Load, sample (seeded, class-stratified to ``spec.cap``) and limit one task's examples."""
    conversion, used = _load_raw(spec, data_dir, source, on_error)
    if not conversion.examples:
        raise DataError(
            used, "no examples of the kept classes", "check the file and the task's label mapping"
        )
    sampled = apply_limit(stratified_sample(conversion.examples, spec.cap, seed), limit)
    result = LoadResult(
        examples=sampled,
        source=used,
        skipped=dict(conversion.skipped),
        is_smoke=used == "smoke",
        dropped=dict(conversion.dropped),
        available=len(conversion.examples),
    )
    if result.is_smoke:
        _warn_smoke(spec, len(sampled))
    malformed = {reason: n for reason, n in result.skipped.items() if reason != "blank line"}
    if malformed:
        log.warning("task %s (%s): skipped malformed records %s", spec.name, used, malformed)
    return result


def load_selected(eval_cfg: Mapping[str, Any] | Any) -> dict[str, LoadResult]:
    """Load every task named in ``eval.tasks`` with the run settings of ``eval_cfg``."""
    check_settings(eval_cfg)
    return {
        spec.name: load_examples(
            spec,
            data_dir=eval_cfg.get("data_dir"),
            source=str(eval_cfg.get("source", "auto")),
            seed=int(eval_cfg.get("seed", 0)),
            limit=eval_cfg.get("limit"),
            on_error=str(eval_cfg.get("on_error", "raise")),
        )
        for spec in select_tasks(eval_cfg)
    }
