"""Checking a study's overrides against ``conf/`` and writing the rows' Hydra overlays.

Each override is parsed with Hydra's own override grammar. ``group=option`` overrides are checked against
the option files under ``conf/<group>/``; then each row's full override list is composed with Hydra (the
same composition ``train.py`` / ``evaluate.py`` / ``build_data.py`` do), which catches unknown keys and
tells what the row trains (stage parts, data kind, model preset, logger). Keys the runner sets itself
(seed, init_from, hydra.*, ...) are refused with the study-file key to use instead.

``overlay_text`` turns a row's overrides into a ``# @package _global_`` config: group overrides become
``override /group: option`` defaults entries, ``key=value`` overrides nested values.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lvlm.study.spec import Row, Study, StudyError
from lvlm.utils.runtime import PROJECT_ROOT

CONF_DIR = PROJECT_ROOT / "conf"
ENTRY_CONFIG = {"train": "train", "eval": "evaluate", "build": "build_data"}
ENTRY_SCRIPT = {"train": "train.py", "eval": "evaluate.py", "build": "build_data.py"}
RESERVED = {
    "train": {
        "seed": "set seeds: [...] at the top of the study file",
        "init_from": "use the row key init_from: <row>",
        "ckpt_path": "drop it: the runner restarts an interrupted step itself",
        "study_row": "drop it: the runner selects the row overlay",
        "hydra": "drop it: the runner sets hydra.* (launcher: goes at the top of the study file)",
    },
    "eval": {
        "seed": "set seeds: [...] at the top of the study file",
        "study_eval": "drop it: the runner selects the row overlay",
        "hydra": "drop it: the runner sets hydra.*",
    },
    "build": {
        "output_dir": "drop it: the runner builds into outputs/study/<name>/build/data",
        "hydra": "drop it: the runner sets hydra.*",
    },
}


@dataclass(frozen=True)
class ParsedOverride:
    """One override: ``[+|++]key=value`` or ``[+]group[@package]=option``."""

    text: str
    key: str
    value: Any
    prefix: str = ""
    package: str | None = None
    is_group: bool = False


@dataclass
class RowFacts:
    """What a row's composed training config says (for checks between rows)."""

    trains: dict[str, bool] = field(default_factory=dict)
    data_kind: str | None = None
    data_name: str | None = None
    model: str | None = None
    has_wandb: bool = False


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    return " ".join(lines[:1]) if lines else type(exc).__name__


def group_options(group: str) -> list[str]:
    folder = CONF_DIR / group
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def parse_overrides(texts: Sequence[str], source: str, row: str | None, where: str) -> list[ParsedOverride]:
    """Parse with Hydra's grammar; sweeps and deletions are refused (a row is one configuration)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import OverrideType

    parser = OverridesParser.create()
    parsed = []
    for text in texts:
        try:
            (override,) = parser.parse_overrides([text])
        except Exception as exc:
            raise StudyError(
                source,
                f"{where} override '{text}' does not parse ({_first_line(exc)})",
                "write key=value or group=option (quote values with spaces)",
                row,
            ) from None
        if override.is_sweep_override():
            raise StudyError(
                source,
                f"{where} override '{text}' is a sweep",
                "give each value its own row (seeds go in seeds: [...])",
                row,
            )
        if override.type == OverrideType.DEL:
            raise StudyError(
                source,
                f"{where} override '{text}' deletes a key, which a row cannot do",
                "set the key to null instead",
                row,
            )
        prefix = {OverrideType.ADD: "+", OverrideType.FORCE_ADD: "++"}.get(override.type, "")
        key = override.key_or_group
        parsed.append(
            ParsedOverride(
                text=text,
                key=key,
                value=override.value(),
                prefix=prefix,
                package=override.package,
                is_group=(CONF_DIR / key).is_dir(),
            )
        )
    return parsed


def check_overrides(
    parsed: Sequence[ParsedOverride], kind: str, source: str, row: str | None, where: str
) -> None:
    """Reserved keys and unknown group options."""
    for item in parsed:
        head = item.key.split(".", 1)[0].split("/", 1)[0]
        reserved = RESERVED[kind].get(item.key) or RESERVED[kind].get(head)
        if reserved:
            raise StudyError(
                source, f"{where} override '{item.text}' sets a key the runner controls", reserved, row
            )
        if item.is_group and item.value is not None:
            options = group_options(item.key)
            if str(item.value) not in options:
                raise StudyError(
                    source,
                    f"unknown {item.key} option '{item.value}' in {where}",
                    f"use one of {', '.join(options)} (files under conf/{item.key}/)",
                    row,
                )


@contextlib.contextmanager
def hydra_conf() -> Iterator[None]:
    """An initialised Hydra for ``conf/`` (cleared again afterwards)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        yield


def compose_checked(
    kind: str, overrides: Sequence[str], source: str, row: str | None, where: str
) -> DictConfig:
    """Compose ``conf/<entry>.yaml`` with ``overrides`` (inside ``hydra_conf()``); one line on failure."""
    from hydra import compose

    try:
        return compose(ENTRY_CONFIG[kind], overrides=list(overrides))
    except Exception as exc:
        raise StudyError(
            source,
            f"{where} overrides do not compose with conf/{ENTRY_CONFIG[kind]}.yaml: {_first_line(exc)}",
            f"check the key with `python {ENTRY_SCRIPT[kind]} --cfg job` (new keys need +key=value)",
            row,
        ) from None


def _select(cfg: DictConfig, key: str) -> Any:
    return OmegaConf.select(cfg, key, default=None, throw_on_resolution_failure=False)


def row_facts(cfg: DictConfig) -> RowFacts:
    trains = _select(cfg, "stage.train")
    wandb = _select(cfg, "logger.wandb")
    return RowFacts(
        trains={k: bool(v) for k, v in (OmegaConf.to_container(trains) if trains else {}).items()},
        data_kind=_select(cfg, "data.kind"),
        data_name=_select(cfg, "data.name"),
        model=_select(cfg, "model.name"),
        has_wandb=isinstance(wandb, DictConfig) and "_target_" in wandb,
    )


def set_nested(target: dict[str, Any], dotted: str, value: Any) -> None:
    node = target
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = value if not isinstance(value, Mapping) else deep_merge({}, value)
    return base


def overlay_text(parsed: Sequence[ParsedOverride], extra: Mapping[str, Any], header: str) -> str:
    """A ``# @package _global_`` config equivalent to ``parsed`` followed by the ``extra`` values."""
    defaults: list[Any] = []
    body: dict[str, Any] = {}
    for item in parsed:
        if item.is_group:
            name = f"/{item.key}" + (f"@{item.package}" if item.package else "")
            defaults.append({name if item.prefix == "+" else f"override {name}": item.value})
        else:
            set_nested(body, item.key, item.value)
    deep_merge(body, extra)
    config = {"defaults": [*defaults, "_self_"], **body}
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    return "# @package _global_\n" + comment + OmegaConf.to_yaml(OmegaConf.create(config))


def check_study_configs(study: Study, compose_fn: Any = None) -> dict[str, RowFacts]:
    """Parse, check and compose every override list of the study; returns the facts of trained rows."""
    source = study.display_path
    facts: dict[str, RowFacts] = {}
    parse = parse_overrides
    with hydra_conf():
        if study.build is not None:
            items = parse(study.build, source, None, "build")
            check_overrides(items, "build", source, None, "build")
            compose_checked("build", study.build, source, None, "build")
        check_overrides(
            parse(study.train_defaults, source, None, "train_defaults"),
            "train",
            source,
            None,
            "train_defaults",
        )
        check_overrides(
            parse(study.eval_defaults, source, None, "eval_defaults"), "eval", source, None, "eval_defaults"
        )
        for row in study.rows.values():
            if row.trained:
                items = parse(row.train or (), source, row.name, "train")
                check_overrides(items, "train", source, row.name, "train")
                check_llm_from_keys(study, row, items)
                overrides = [*study.train_defaults, *(row.train or ()), *wiring_overrides(row, "/x")]
                cfg = compose_checked("train", overrides, source, row.name, "train")
                facts[row.name] = row_facts(cfg)
            if row.evaluated:
                items = parse(row.evaluate or (), source, row.name, "evaluate")
                check_overrides(items, "eval", source, row.name, "evaluate")
                check_eval_keys(study, row, items)
                extra = ["model.kind=checkpoint", "model.checkpoint=/x.ckpt"] if row.trained else []
                compose_checked(
                    "eval",
                    [*study.eval_defaults, *(row.evaluate or ()), *extra],
                    source,
                    row.name,
                    "evaluate",
                )
    check_between_rows(study, facts)
    return facts


SAFE_PATH = re.compile(r"^[A-Za-z0-9_./${}:+-]+$")


def hydra_value(text: str) -> str:
    """``text`` as a Hydra override value: as is when plain, else single-quoted (spaces, commas ...)."""
    if SAFE_PATH.match(text):
        return text
    return "'" + text.replace("'", "\\'") + "'"


def wiring_overrides(row: Row, out: str, seed: int | str = 0, build_data: str | None = None) -> list[str]:
    """The overrides the runner adds for ``llm_from``, ``init_from`` and ``needs_build``."""
    added = []
    if row.llm_from:
        llm = hydra_value(f"{out}/export/{row.llm_from}/s{seed}/llm")
        added += [
            f"model.llm.name_or_path={llm}",
            "model.tokenizer.kind=hf",
            f"++model.tokenizer.name_or_path={llm}",
        ]
    if row.init_from:
        added.append(f"init_from={hydra_value(f'{out}/train/{row.init_from}/s{seed}/checkpoints/last.ckpt')}")
    if row.needs_build:
        added.append(f"data.root={hydra_value(build_data or out + '/build/data')}")
    return added


def check_llm_from_keys(study: Study, row: Row, items: Sequence[ParsedOverride]) -> None:
    if not row.llm_from:
        return
    for item in items:
        if item.key in ("model.llm.name_or_path", "model.tokenizer.kind", "model.tokenizer.name_or_path"):
            raise study.error(
                f"train override '{item.text}' conflicts with llm_from: {row.llm_from}",
                "drop the override or llm_from (llm_from sets the LLM and tokenizer)",
                row.name,
            )


def check_eval_keys(study: Study, row: Row, items: Sequence[ParsedOverride]) -> None:
    if not row.trained:
        return
    for item in items:
        if item.key == "model.checkpoint":
            raise study.error(
                f"evaluate override '{item.text}' sets the checkpoint of a trained row",
                "drop it: the runner evaluates this row's own last.ckpt",
                row.name,
            )
        if item.key == "model.kind" and item.value != "checkpoint":
            raise study.error(
                f"evaluate override '{item.text}' on a trained row",
                "trained rows are evaluated as model.kind=checkpoint; make an "
                "evaluation-only row (no train) for other models",
                row.name,
            )


def check_between_rows(study: Study, facts: Mapping[str, RowFacts]) -> None:
    """What a row starts from must have trained what it needs; built data only where declared."""
    for row in study.rows.values():
        if not row.trained:
            continue
        own = facts[row.name]
        if row.llm_from and not facts[row.llm_from].trains.get("llm"):
            raise study.error(
                f"llm_from row '{row.llm_from}' does not train the LLM (its stage trains "
                f"{_parts(facts[row.llm_from])}), so its export would be the unchanged base",
                "point llm_from at a row whose stage trains the LLM, or drop llm_from",
                row.name,
            )
        if row.init_from:
            source = facts[row.init_from]
            shared = [p for p, on in source.trains.items() if on and own.trains.get(p)]
            if not shared:
                raise study.error(
                    f"init_from row '{row.init_from}' trains {_parts(source)} but this row trains "
                    f"{_parts(own)}, so there is nothing to initialise",
                    "start from a row that trains a part this row trains (e.g. the stage-1 projector)",
                    row.name,
                )
            if source.model != own.model:
                raise study.error(
                    f"init_from row '{row.init_from}' uses model preset '{source.model}' but this row "
                    f"uses '{own.model}'",
                    "use the same model= in both rows",
                    row.name,
                )
        constructed = own.data_kind == "constructed"
        if constructed and not row.needs_build:
            raise study.error(
                f"trains on constructed data '{own.data_name}' but needs_build is false",
                "set needs_build: true (and keep the study's build section)",
                row.name,
            )
        if row.needs_build and not constructed:
            raise study.error(
                f"needs_build is true but it trains on data '{own.data_name}' "
                f"(kind {own.data_kind}), which build_data.py does not make",
                "set needs_build: false, or train on fovit/nofovit/foit/nofoit",
                row.name,
            )


def _parts(facts: RowFacts) -> str:
    parts = [p for p, on in facts.trains.items() if on]
    return "+".join(parts) if parts else "nothing"
