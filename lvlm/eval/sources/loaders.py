"""One interface over a task's data sources: local original files, the dataset hub, smoke sets.

``load_examples(spec, data_dir=..., source=..., seed=..., limit=...)`` returns a ``LoadResult``. The
source is looked up by name in ``DATA_SOURCES`` (``eval.source``; a miss lists the valid names):

- ``local``: ``<data_dir>/<task>/<local.file>`` in its original format (``lvlm.eval.sources.local``);
- ``hub``: ``datasets.load_dataset`` with the task's hub mapping (``lvlm.eval.sources.hub``);
- ``smoke``: the built-in hand-written sets (``lvlm.eval.sources.smoke``), with a loud warning;
- ``auto`` (default): the first available of ``AUTO_ORDER`` (local when ``data_dir`` holds the task's
  file, else the hub, else smoke). Only *unavailability* falls through (no data_dir or file; hub
  unreachable); a malformed file raises.

A new source is one function ``(spec, data_dir, on_error) -> (Conversion, source id)`` registered with
``@DATA_SOURCES.register(name)`` that raises ``SourceUnavailable`` when it cannot serve the task. The
examples are then sampled (``sampling.stratified_sample`` with the task's ``cap`` and ``seed``) and cut
to ``limit``. Dropped classes (neutral, unlabeled) are filtered by definition and counted in
``dropped``; malformed records raise or, with ``on_error="skip"``, are counted in ``skipped``. The
protocol is described in ``docs/evaluation.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lvlm.errors import ConfigError, DataError
from lvlm.eval.sources import hub
from lvlm.eval.sources.common import Conversion, MappingRules, to_examples
from lvlm.eval.sources.local import read_local, resolve_encoding
from lvlm.eval.sources.sampling import apply_limit, stratified_sample
from lvlm.eval.sources.smoke import smoke_file, smoke_source
from lvlm.eval.sources.synthetic_family import family_conversion
from lvlm.eval.tasks.definitions import TaskSpec, check_settings, select_tasks
from lvlm.eval.types import Example
from lvlm.registry import Registry

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
    encoding: str | None = None  # how a local file was decoded (None: not a local file)


class SourceUnavailable(Exception):
    """Internal: this source cannot be used here; ``auto`` tries the next one."""


class MissingSetting(SourceUnavailable):
    """Internal: the source needs a setting that is not set (quietly skipped by ``auto``)."""

    def __init__(self, setting: str, hint: str) -> None:
        super().__init__(f"{setting} is not set")
        self.setting, self.hint = setting, hint


SourceLoader = Callable[[TaskSpec, "str | Path | None", str], tuple[Conversion, str]]
DATA_SOURCES: Registry[SourceLoader] = Registry("eval.source value")
AUTO_ORDER = ("local", "hub", "smoke")  # what ``eval.source=auto`` tries, in this order


def _local_path(spec: TaskSpec, data_dir: str | Path | None) -> Path:
    if data_dir is None:
        raise MissingSetting("eval.data_dir", "<folder>")
    if spec.local is None:
        raise SourceUnavailable(f"task '{spec.name}' defines no local source")
    path = Path(data_dir).expanduser() / spec.name / spec.local.file
    if not path.is_file():
        raise SourceUnavailable(f"{path}: no such file")
    return path


@DATA_SOURCES.register("local")
def load_local(spec: TaskSpec, data_dir: str | Path | None, on_error: str) -> tuple[Conversion, str]:
    """``<data_dir>/<task>/<local.file>`` in the task's original release format."""
    path = _local_path(spec, data_dir)
    assert spec.local is not None
    rules = MappingRules(
        spec.name, spec.local.columns, spec.local.label, f"eval.task_defs.{spec.name}.local", spec.name
    )
    local = resolve_encoding(path, spec.local)  # not valid UTF-8 under the default: ISO-8859-1
    conversion = to_examples(read_local(path, local), rules, source=str(path), on_error=on_error)
    conversion.encoding = local.encoding
    return conversion, f"local:{path}"


@DATA_SOURCES.register("hub")
def load_hub(spec: TaskSpec, data_dir: str | Path | None, on_error: str) -> tuple[Conversion, str]:
    """The task's split on the dataset hub (``data_dir`` is not used)."""
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


@DATA_SOURCES.register("smoke")
def load_smoke(spec: TaskSpec, data_dir: str | Path | None, on_error: str) -> tuple[Conversion, str]:
    """The built-in hand-written smoke set (malformed records always raise)."""
    path = smoke_file(spec.name)
    if not path.is_file():
        raise SourceUnavailable(f"no built-in smoke set for task '{spec.name}'")
    source = smoke_source(spec)
    rules = MappingRules(
        spec.name, source.columns, source.label, "lvlm/eval/sources/smoke", f"{spec.name}:smoke"
    )
    return to_examples(read_local(path, source), rules, source=str(path), on_error="raise"), "smoke"


@DATA_SOURCES.register("synthetic_family")
def load_synthetic_family(
    spec: TaskSpec, data_dir: str | Path | None, on_error: str
) -> tuple[Conversion, str]:
    """The miniature's generated task family, evaluation split (``synthetic_family``; docs/miniature.md)."""
    return family_conversion(spec)


@DATA_SOURCES.register("auto")
def load_auto(spec: TaskSpec, data_dir: str | Path | None, on_error: str) -> tuple[Conversion, str]:
    """The first available source of ``AUTO_ORDER``; only unavailability falls through."""
    reasons: list[str] = []
    for kind in AUTO_ORDER:
        try:
            return DATA_SOURCES.get(kind)(spec, data_dir, on_error)
        except SourceUnavailable as err:
            quiet = isinstance(err, MissingSetting)  # nothing was asked for, nothing to report
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


def _load_raw(
    spec: TaskSpec, data_dir: str | Path | None, source: str, on_error: str
) -> tuple[Conversion, str]:
    """Load with the source named ``source``; an unavailable source is an error naming the task."""
    loader = DATA_SOURCES.get(source)
    try:
        return loader(spec, data_dir, on_error)
    except MissingSetting as err:
        raise ConfigError(
            f"eval.source={source} needs {err.setting}; fix: set {err.setting}={err.hint}"
        ) from err
    except SourceUnavailable as err:
        target = f"eval.task_defs.{spec.name}"
        raise DataError(target, str(err), "provide the data or choose another eval.source") from err


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
        encoding=conversion.encoding,
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
    DATA_SOURCES.get(str(eval_cfg.get("source", "auto")))  # an unknown source fails before any loading
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
