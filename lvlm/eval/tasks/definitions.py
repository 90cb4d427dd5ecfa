"""Task definitions of the verbalizer-manipulation benchmark, built from configuration.

This file owns the typed view of the ``eval`` config group (``conf/eval/verbalizer.yaml`` with one file
per task under ``conf/eval/tasks/``): the ``TaskSpec`` of each binary task (conditions, input lines,
golden words, cap, hub and local sources), the task registry built from ``eval.task_defs``, the selection
of tasks and label systems named by ``eval.tasks`` / ``eval.label_systems`` (unknown names raise
``UnknownNameError`` listing the valid ones), validation of the run settings, and ``load_eval_config``
which composes the ``eval`` group with Hydra outside an app. The protocol is described in
``docs/evaluation.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.types import LABEL_SYSTEMS, LabelSystem
from lvlm.registry import Registry
from lvlm.utils.config import to_plain
from lvlm.utils.runtime import PROJECT_ROOT

CONF_DIR = PROJECT_ROOT / "conf"
GROUP_CONFIG = "eval/verbalizer"
LOCAL_FORMATS = ("tsv", "csv", "text_label", "jsonl")
HEADER_MODES = ("true", "false", "auto")
ON_ERROR = ("raise", "skip")
IMAGE_SLOTS = ("none", "blank")


@dataclass(frozen=True)
class TemplateSpec:
    """The prompt pattern: instruction line, one line per input field, answer cue."""

    instruction: str
    input_line: str
    answer: str


@dataclass(frozen=True)
class LabelMapping:
    """Raw label value → class index (0 = label_0); ``drop`` holds values removed by definition."""

    column: str
    labels: dict[str, int]
    drop: tuple[str, ...]


@dataclass(frozen=True)
class HubSource:
    """Where a task lives on the dataset hub and how its columns map to example fields."""

    path: str
    name: str | None
    split: str
    revision: str | None
    columns: dict[str, str]
    label: LabelMapping

    @property
    def ident(self) -> str:
        config = f"/{self.name}" if self.name else ""
        return f"{self.path}{config}:{self.split}"


@dataclass(frozen=True)
class LocalSource:
    """A task's original-format file under ``<data_dir>/<task>/`` and how to read it."""

    file: str
    format: str
    encoding: str
    header: str
    column_names: tuple[str, ...]
    separator: str
    columns: dict[str, str]
    label: LabelMapping


@dataclass(frozen=True)
class TaskSpec:
    """One binary task: what the prompt says, which fields it shows and where its data comes from."""

    name: str
    conditions: tuple[str, str]
    fields: tuple[tuple[str, str], ...]  # (example field, line prefix), in prompt order
    golden: tuple[str, str]
    cap: int | None
    template: TemplateSpec
    hub: HubSource | None
    local: LocalSource | None

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(field for field, _ in self.fields)


def _require(node: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in node or node[key] is None:
        raise ConfigError(f"{where}: missing key '{key}'; fix: add {where}.{key} to the eval config")
    return node[key]


def _pair(value: Any, where: str) -> tuple[str, str]:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 2:
        raise ConfigError(f"{where}: expected a list of two strings, got {value!r}; fix: give exactly two")
    return (str(value[0]), str(value[1]))


def _label_mapping(node: Mapping[str, Any], where: str) -> LabelMapping:
    labels = {str(raw): int(index) for raw, index in _require(node, "labels", where).items()}
    if sorted(set(labels.values())) != [0, 1]:
        raise ConfigError(
            f"{where}.labels: must map raw labels onto both 0 and 1, got {labels}; fix: edit it"
        )
    drop = tuple(str(raw) for raw in node.get("drop") or ())
    overlap = set(drop) & set(labels)
    if overlap:
        raise ConfigError(f"{where}: labels {sorted(overlap)} are both kept and dropped; fix: remove one")
    return LabelMapping(column=str(_require(node, "label_column", where)), labels=labels, drop=drop)


def _columns(node: Mapping[str, Any], fields: tuple[str, ...], where: str) -> dict[str, str]:
    columns = {str(field): str(column) for field, column in _require(node, "columns", where).items()}
    missing = [field for field in fields if field not in columns]
    if missing:
        raise ConfigError(
            f"{where}.columns: no column for fields {missing}; fix: map every field to a column"
        )
    return columns


def _hub_source(node: Mapping[str, Any] | None, fields: tuple[str, ...], where: str) -> HubSource | None:
    if not node:
        return None
    return HubSource(
        path=str(_require(node, "path", where)),
        name=None if node.get("name") is None else str(node["name"]),
        split=str(_require(node, "split", where)),
        revision=None if node.get("revision") is None else str(node["revision"]),
        columns=_columns(node, fields, where),
        label=_label_mapping(node, where),
    )


def _local_source(node: Mapping[str, Any] | None, fields: tuple[str, ...], where: str) -> LocalSource | None:
    if not node:
        return None
    fmt = str(_require(node, "format", where))
    if fmt not in LOCAL_FORMATS:
        raise UnknownNameError("local format", fmt, LOCAL_FORMATS)
    header = str(node.get("header", "true")).lower()
    if header not in HEADER_MODES:
        raise ConfigError(
            f"{where}.header: '{header}' is not one of {HEADER_MODES}; fix: use true|false|auto"
        )
    column_names = tuple(str(name) for name in node.get("column_names") or ())
    if header != "true" and fmt != "jsonl" and not column_names:
        raise ConfigError(f"{where}: header '{header}' needs column_names; fix: list the file's columns")
    return LocalSource(
        file=str(_require(node, "file", where)),
        format=fmt,
        encoding=str(node.get("encoding") or "utf-8"),
        header=header,
        column_names=column_names,
        separator=str(node.get("separator") or ""),
        columns=_columns(node, fields, where),
        label=_label_mapping(node, where),
    )


def _template(eval_cfg: Mapping[str, Any], override: Mapping[str, Any] | None, where: str) -> TemplateSpec:
    merged = dict(_require(eval_cfg, "template", "eval"))
    merged.update(override or {})
    return TemplateSpec(
        instruction=str(_require(merged, "instruction", where)),
        input_line=str(_require(merged, "input_line", where)),
        answer=str(_require(merged, "answer", where)),
    )


def task_spec_from_config(name: str, node: Mapping[str, Any], eval_cfg: Mapping[str, Any]) -> TaskSpec:
    """Build and validate one ``TaskSpec`` from its ``eval.task_defs.<name>`` node (plain containers)."""
    where = f"eval.task_defs.{name}"
    fields = tuple((str(field), str(prefix)) for field, prefix in _require(node, "fields", where).items())
    field_names = tuple(field for field, _ in fields)
    cap = node.get("cap")
    if cap is not None and (not isinstance(cap, int) or cap <= 0):
        raise ConfigError(f"{where}.cap: must be null or a positive integer, got {cap!r}; fix: change it")
    return TaskSpec(
        name=name,
        conditions=_pair(_require(node, "conditions", where), f"{where}.conditions"),
        fields=fields,
        golden=_pair(_require(node, "golden", where), f"{where}.golden"),
        cap=cap,
        template=_template(eval_cfg, node.get("template"), where),
        hub=_hub_source(node.get("hub"), field_names, f"{where}.hub"),
        local=_local_source(node.get("local"), field_names, f"{where}.local"),
    )


def build_tasks(eval_cfg: DictConfig | Mapping[str, Any]) -> Registry[TaskSpec]:
    """All tasks defined under ``eval.task_defs``, by name."""
    plain = to_plain(eval_cfg)
    registry: Registry[TaskSpec] = Registry("task")
    for name, node in _require(plain, "task_defs", "eval").items():
        registry.add(str(name), task_spec_from_config(str(name), node, plain))
    return registry


def select_tasks(eval_cfg: DictConfig | Mapping[str, Any]) -> list[TaskSpec]:
    """The tasks named in ``eval.tasks``, in that order; an unknown name lists the valid ones."""
    registry = build_tasks(eval_cfg)
    chosen = to_plain(eval_cfg).get("tasks")
    if chosen is not None and len(chosen) == 0:
        raise ConfigError(
            "eval.tasks is empty, so there is nothing to evaluate; fix: name the tasks (e.g. "
            f"eval.tasks=[{','.join(registry.names()[:2])}]) or set eval.tasks=null for all of them"
        )
    names = list(chosen or registry.names())
    if len(set(names)) != len(names):
        raise ConfigError(f"eval.tasks: duplicate names in {names}; fix: list each task once")
    return [registry.get(str(name)) for name in names]


def select_label_systems(eval_cfg: DictConfig | Mapping[str, Any]) -> list[LabelSystem]:
    """The label systems named in ``eval.label_systems`` (default: all three)."""
    names = list(to_plain(eval_cfg).get("label_systems") or LABEL_SYSTEMS)
    for name in names:
        if name not in LABEL_SYSTEMS:
            raise UnknownNameError("label system", str(name), LABEL_SYSTEMS)
    return names


def check_settings(eval_cfg: DictConfig | Mapping[str, Any]) -> None:
    """Validate the run settings owned by the data side (on_error, image_slot, limit, seed).

    ``eval.source`` is checked against the source registry (``lvlm.eval.sources.loaders.DATA_SOURCES``).
    """
    plain = to_plain(eval_cfg)
    for key, valid in (("on_error", ON_ERROR), ("image_slot", IMAGE_SLOTS)):
        value = str(plain.get(key))
        if value not in valid:
            raise UnknownNameError(f"eval.{key} value", value, valid)
    limit = plain.get("limit")
    if limit is not None and (not isinstance(limit, int) or limit <= 0):
        raise ConfigError(f"eval.limit: must be null or a positive integer, got {limit!r}; fix: change it")
    if not isinstance(plain.get("seed"), int):
        raise ConfigError(f"eval.seed: must be an integer, got {plain.get('seed')!r}; fix: change it")


def _group_relative(override: str) -> str:
    """Prefix a group-relative override (``limit=5``, ``+foo=1``, ``~bar``) with ``eval.``."""
    prefix = ""
    while override[:1] in ("+", "~"):
        prefix, override = prefix + override[0], override[1:]
    return prefix + (override if override.startswith("eval.") else f"eval.{override}")


def load_eval_config(
    overrides: list[str] | None = None, *, config_name: str | None = None, conf_dir: Path | None = None
) -> DictConfig:
    """Compose the ``eval`` config group with Hydra and return the ``eval`` node.

    ``overrides`` may be written relative to the group (``limit=5``) or with the ``eval.`` prefix.
    ``config_name`` defaults to ``evaluate`` when ``conf/evaluate.yaml`` exists, else the group file
    ``eval/verbalizer``. Inside a running Hydra app use ``cfg.eval`` instead of calling this.
    """
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        raise ConfigError(
            "load_eval_config: Hydra is already initialized; fix: inside a Hydra app use cfg.eval"
        )
    conf_dir = conf_dir or CONF_DIR
    if config_name is None:
        config_name = "evaluate" if (conf_dir / "evaluate.yaml").exists() else GROUP_CONFIG
    with initialize_config_dir(config_dir=str(conf_dir), version_base="1.3"):
        cfg = compose(config_name=config_name, overrides=[_group_relative(o) for o in overrides or []])
    if "eval" not in cfg:
        raise ConfigError(f"{conf_dir}/{config_name}.yaml: no 'eval' node; fix: add '- eval: verbalizer'")
    return cfg.eval
