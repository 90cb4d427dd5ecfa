"""Verbalizer sets per task and label system, resolved from ``eval.verbalizer_sets``.

The config groups sets by label system (``natural``, ``neutral``, ``unnatural``); each set is
``<name>: [word for label_0, word for label_1]``. A word that is exactly ``{golden_0}`` or ``{golden_1}``
is replaced by the task's golden word, so ``natural_golden`` is (positive, negative) for SST-2 and
(entailment, not entailment) for RTE, and ``unnatural_golden_swapped`` the reverse. Set names must be
unique across systems; the two resolved words must be non-empty and differ. ``verbalizer_hash`` gives
a sha256 of the resolved definition for results provenance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from omegaconf import DictConfig

from lvlm.errors import ConfigError, UnknownNameError
from lvlm.eval.tasks.definitions import TaskSpec, select_label_systems
from lvlm.eval.types import LABEL_SYSTEMS, LabelSystem, VerbalizerSet
from lvlm.utils.config import to_plain

GOLDEN_TOKENS = {"{golden_0}": 0, "{golden_1}": 1}


def _set_definitions(eval_cfg: DictConfig | Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    node = eval_cfg.get("verbalizer_sets")
    if node is None:
        raise ConfigError("eval.verbalizer_sets: missing; fix: define the sets per label system")
    plain = to_plain(node)
    for system in plain:
        if system not in LABEL_SYSTEMS:
            raise UnknownNameError("label system", str(system), LABEL_SYSTEMS)
    return plain


def resolve_word(word: str, golden: tuple[str, str]) -> str:
    """Replace a whole-word golden token by the task's golden word; other words pass through."""
    return golden[GOLDEN_TOKENS[word]] if word in GOLDEN_TOKENS else word


def _resolve_pair(name: str, system: str, words: Any, spec: TaskSpec) -> tuple[str, str]:
    where = f"eval.verbalizer_sets.{system}.{name}"
    if not isinstance(words, Sequence) or isinstance(words, str) or len(words) != 2:
        raise ConfigError(f"{where}: expected [word_0, word_1], got {words!r}; fix: give exactly two words")
    pair = (resolve_word(str(words[0]), spec.golden), resolve_word(str(words[1]), spec.golden))
    if not pair[0].strip() or not pair[1].strip() or pair[0] == pair[1]:
        raise ConfigError(f"{where}: words {pair} for task {spec.name} must be two different non-empty words")
    return pair


def verbalizer_sets(
    task_spec: TaskSpec,
    eval_cfg: DictConfig | Mapping[str, Any],
    systems: Sequence[str] | None = None,
) -> list[VerbalizerSet]:
    """The task's sets of ``systems`` (default: ``eval.label_systems``), in config order per system."""
    definitions = _set_definitions(eval_cfg)
    wanted = list(systems) if systems is not None else list(select_label_systems(eval_cfg))
    seen: dict[str, str] = {}
    for system, sets in definitions.items():
        for name in sets or {}:
            if name in seen:
                raise ConfigError(
                    f"eval.verbalizer_sets: set '{name}' appears under both {seen[name]} and "
                    f"{system}; fix: rename one"
                )
            seen[name] = system
    result: list[VerbalizerSet] = []
    for system in wanted:
        if system not in LABEL_SYSTEMS:
            raise UnknownNameError("label system", str(system), LABEL_SYSTEMS)
        label_system: LabelSystem = system  # type: ignore[assignment]
        for name, words in (definitions.get(system) or {}).items():
            pair = _resolve_pair(str(name), system, words, task_spec)
            result.append(VerbalizerSet(name=str(name), system=label_system, words=pair))
    return result


def _canonical(sets: Iterable[VerbalizerSet]) -> list[list[str]]:
    return [[vset.name, vset.system, vset.words[0], vset.words[1]] for vset in sets]


def verbalizer_hash(sets: Iterable[VerbalizerSet] | Mapping[str, Iterable[VerbalizerSet]]) -> str:
    """sha256 of the resolved sets (a list, or a mapping task → list), order-sensitive."""
    if isinstance(sets, Mapping):
        payload: Any = {task: _canonical(task_sets) for task, task_sets in sorted(sets.items())}
    else:
        payload = _canonical(sets)
    text = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
