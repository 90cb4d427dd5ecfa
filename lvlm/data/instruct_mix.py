"""The miniature's synthetic task family and the text instruction mix its base LLM is trained on.

The miniature study (``experiments/mini``, ``docs/miniature.md``) needs binary classification tasks a tiny
model can learn, asked with the benchmark's own verbalizer prompt. This module owns both halves of the data:

**The task family.** Every example is one object description in the vocabulary of the synthetic scenes
(``lvlm.data.scene``), e.g. ``"a small red circle in the top left on a gray background"`` — one of
6 colours × 3 shapes × 2 sizes × 9 cells × 3 backgrounds = 972 descriptions. Each task reads one
attribute (``FAMILY_TASKS``): colour warm/cool, shape round/angular, size large/small, row top/bottom.
The descriptions are split once, by the fixed seed ``SPLIT_SEED``, into a training part (three quarters)
and an evaluation part (one quarter), so no evaluation input is ever trained on. ``family_examples``
draws a task's examples from one part: all of them, class-balanced (evaluation), or ``count`` seeded
draws with balanced labels (training). The evaluation source ``eval.source=synthetic_family``
(``lvlm.eval.sources.synthetic_family``) serves the evaluation part; the prompt text of each task
(conditions, line prefix, golden words) lives in ``conf/eval/tasks/mini_*.yaml``.

**The instruction mix** (``data.kind=instruct_mix``, ``conf/data/instruct_mix.yaml``). LLaVA-format,
text-only records: the family's training examples rendered with the benchmark template and a word set —
a natural set of the evaluation, a neutral-style pair from ``data.mix.word_pool`` (every word of every
evaluation set removed) or, when ``weights.unnatural > 0``, a swapped set — answered with the word the
instruction assigns to the true condition (in quotes, ``data.mix.answer``). The family, template and
evaluation sets are read from the composed ``data.family`` node (``conf/eval/mini.yaml``). Generated on
first use into ``<data.root>/instruct_mix-<key>/`` (``train.json``, ``val.json``, ``meta.jsonl`` with
task / word set / label per record, ``card.json``), atomically; the key hashes everything that shapes it.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvlm.data.scene import BACKGROUNDS, COLORS, COLUMNS, ROWS, SHAPES, SIZES, SceneObject
from lvlm.errors import ConfigError, UnknownNameError

FORMAT_VERSION = 1
SPLIT_SEED = 0  # fixed: the train/eval split of the descriptions must be the same for every run
EVAL_FRACTION = 0.25
SPLITS = ("train", "eval")
SYSTEMS = ("natural", "neutral", "unnatural")
GOLDEN_TOKENS = {"{golden_0}": 0, "{golden_1}": 1}


# ---------------------------------------------------------------------------------------------------------
# The task family
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FamilyObject:
    """One object on a background: the input of every task of the family."""

    obj: SceneObject
    background: str

    @property
    def text(self) -> str:
        o = self.obj
        return f"a {o.size} {o.color} {o.shape} in the {o.position} on a {self.background} background"


@dataclass(frozen=True)
class FamilyTask:
    """Which attribute a task reads, and the attribute values of label_0 and label_1 (others: not in it)."""

    name: str
    attribute: str  # a SceneObject field: color | shape | size | row
    classes: tuple[tuple[str, ...], tuple[str, ...]]

    def label(self, item: FamilyObject) -> int | None:
        value = getattr(item.obj, self.attribute)
        for label, values in enumerate(self.classes):
            if value in values:
                return label
        return None


FAMILY_TASKS: dict[str, FamilyTask] = {
    task.name: task
    for task in (
        FamilyTask("mini_colour", "color", (("red", "orange", "yellow"), ("green", "blue", "purple"))),
        FamilyTask("mini_shape", "shape", (("circle",), ("square", "triangle"))),
        FamilyTask("mini_size", "size", (("large",), ("small",))),
        FamilyTask("mini_row", "row", (("top",), ("bottom",))),
    )
}


@dataclass(frozen=True)
class FamilyExample:
    """One example of a family task: ``uid`` is stable across runs, ``label`` 0 = the first condition."""

    task: str
    uid: str
    text: str
    label: int


def family_task(name: str) -> FamilyTask:
    if name not in FAMILY_TASKS:
        raise UnknownNameError("synthetic family task", name, FAMILY_TASKS)
    return FAMILY_TASKS[name]


def all_objects() -> list[FamilyObject]:
    """Every description of the family, in a fixed order."""
    return [
        FamilyObject(SceneObject(shape, color, size, row, column), background)
        for color, shape, size, row, column, background in itertools.product(
            sorted(COLORS), SHAPES, SIZES, ROWS, COLUMNS, sorted(BACKGROUNDS)
        )
    ]


def split_objects() -> dict[str, list[FamilyObject]]:
    """The fixed split of the descriptions: ``eval`` (a quarter) and ``train`` (the rest), disjoint."""
    objects = all_objects()
    random.Random(f"instruct-mix-split/{SPLIT_SEED}").shuffle(objects)
    n_eval = round(len(objects) * EVAL_FRACTION)
    return {"eval": objects[:n_eval], "train": objects[n_eval:]}


def family_examples(task: str, split: str, *, seed: int = 0, count: int | None = None) -> list[FamilyExample]:
    """Examples of ``task`` from one part of the split, deterministic by ``seed``.

    ``count=None``: every description of the part that belongs to the task, class-balanced (the larger
    class is cut by a seeded shuffle), classes interleaved. ``count=N``: N seeded draws, each label
    equally likely, descriptions drawn with replacement (training records).
    """
    spec = family_task(task)
    if split not in SPLITS:
        raise UnknownNameError("synthetic family split", split, SPLITS)
    by_label: dict[int, list[FamilyObject]] = {0: [], 1: []}
    for item in split_objects()[split]:
        label = spec.label(item)
        if label is not None:
            by_label[label].append(item)
    rng = random.Random(f"instruct-mix/{task}/{split}/{seed}")
    if count is None:
        size = min(len(group) for group in by_label.values())
        kept = {label: rng.sample(group, size) for label, group in by_label.items()}
        pairs = [(label, kept[label][i]) for i in range(size) for label in (0, 1)]
    else:
        pairs = []
        for _ in range(count):
            label = rng.randrange(2)
            pairs.append((label, rng.choice(by_label[label])))
    return [
        FamilyExample(task, f"{task}:{split}:{index}", item.text, label)
        for index, (label, item) in enumerate(pairs)
    ]


# ---------------------------------------------------------------------------------------------------------
# Prompts (the benchmark's rendering, lvlm.eval.tasks.prompts, for the family's single input field)
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FamilyPromptSpec:
    """What the evaluation config says about one task: conditions, line prefix, golden words."""

    name: str
    conditions: tuple[str, str]
    prefix: str
    golden: tuple[str, str]


def prompt_specs(family: Mapping[str, Any]) -> list[FamilyPromptSpec]:
    """The tasks of ``family.tasks`` from ``family.task_defs`` (each must be a family task with one field)."""
    specs = []
    for name in family.get("tasks") or []:
        family_task(str(name))
        node = (family.get("task_defs") or {}).get(name)
        if not node:
            raise ConfigError(f"data.family.task_defs: no definition of task '{name}'; fix: add it")
        fields = dict(node["fields"])
        if len(fields) != 1:
            raise ConfigError(f"data.family.task_defs.{name}: the family has one input field, got {fields}")
        conditions, golden = node["conditions"], node["golden"]
        specs.append(
            FamilyPromptSpec(str(name), (str(conditions[0]), str(conditions[1])),
                             str(next(iter(fields.values()))), (str(golden[0]), str(golden[1])))
        )  # fmt: skip
    if not specs:
        raise ConfigError("data.family.tasks: empty; fix: name the family tasks to train on")
    return specs


def render_prompt(
    template: Mapping[str, str], spec: FamilyPromptSpec, text: str, words: Sequence[str]
) -> str:
    """Instruction line, ``<prefix>: <text>`` and the answer cue, joined by newlines (as the benchmark)."""
    instruction = template["instruction"].format(
        condition_0=spec.conditions[0], condition_1=spec.conditions[1], word_0=words[0], word_1=words[1]
    )
    line = template["input_line"].format(prefix=spec.prefix, text=text)
    return "\n".join([instruction, line, template["answer"]])


def resolve_sets(
    verbalizer_sets: Mapping[str, Mapping[str, Sequence[str]]], golden: tuple[str, str]
) -> dict[str, list[tuple[str, tuple[str, str]]]]:
    """system → [(set name, (word_0, word_1))] with the golden tokens replaced by the task's words."""

    def word(w: str) -> str:
        return golden[GOLDEN_TOKENS[w]] if w in GOLDEN_TOKENS else str(w)

    return {
        system: [(str(name), (word(pair[0]), word(pair[1]))) for name, pair in (sets or {}).items()]
        for system, sets in verbalizer_sets.items()
    }


ONSETS = (
    "",
    "b",
    "c",
    "d",
    "f",
    "g",
    "h",
    "j",
    "k",
    "l",
    "m",
    "n",
    "p",
    "r",
    "s",
    "t",
    "v",
    "w",
    "z",
    "br",
    "ch",
    "fl",
    "gr",
    "pl",
    "sh",
    "sk",
    "sn",
    "st",
    "tr",
)
VOWELS = ("a", "e", "i", "o", "u", "ar", "er", "or", "oo", "ee", "ai", "ou")
CODAS = ("", "", "b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "x")


def generated_words(count: int, seed: int) -> list[str]:
    """``count`` distinct seeded pseudo-words of one or two syllables, e.g. ``"ta"``, ``"skoum"``."""
    rng = random.Random(f"instruct-mix-words/{seed}")
    words: dict[str, None] = {}
    attempts = 0
    while len(words) < count and attempts < 50 * count + 100:
        attempts += 1
        word = "".join(
            rng.choice(ONSETS) + rng.choice(VOWELS) + rng.choice(CODAS) for _ in range(rng.randint(1, 2))
        )
        if 2 <= len(word) <= 8:
            words[word] = None
    return list(words)


def is_excluded(word: str, excluded: set[str]) -> bool:
    """An evaluation word itself, or a word containing one of three letters or more (``"barn"``)."""
    folded = word.casefold()
    return folded in excluded or any(len(e) >= 3 and e in folded for e in excluded)


def training_word_pool(mix: Mapping[str, Any], family: Mapping[str, Any]) -> list[str]:
    """The neutral-style training words: ``mix.word_pool`` plus ``mix.generated_words`` seeded pseudo-words,
    without every evaluation word (golden words of every family task included) and every word containing
    one."""
    excluded = evaluation_words(family)
    listed = [str(w).strip() for w in mix.get("word_pool") or []]
    generated = generated_words(int(mix.get("generated_words", 0) or 0), int(mix.get("seed", 0)))
    kept = sorted({w for w in [*listed, *generated] if w and not is_excluded(w, excluded)})
    if len(kept) < 2:
        raise ConfigError("data.mix.word_pool: fewer than two words left after removing evaluation words")
    return kept


def evaluation_words(family: Mapping[str, Any]) -> set[str]:
    """Every word (case-folded) any evaluation set can show, for every task of the family."""
    words: set[str] = set()
    for spec in prompt_specs(family):
        for sets in resolve_sets(family["verbalizer_sets"], spec.golden).values():
            words.update(w.casefold() for _, pair in sets for w in pair)
    return words


# ---------------------------------------------------------------------------------------------------------
# The instruction mix
# ---------------------------------------------------------------------------------------------------------
def _weights(mix: Mapping[str, Any]) -> list[float]:
    weights = dict(mix.get("weights") or {})
    unknown = set(weights) - set(SYSTEMS)
    if unknown:
        raise UnknownNameError("data.mix.weights system", sorted(unknown)[0], SYSTEMS)
    values = [float(weights.get(system, 0.0)) for system in SYSTEMS]
    if min(values) < 0 or sum(values) <= 0:
        raise ConfigError(f"data.mix.weights: need non-negative weights with a positive sum, got {weights}")
    return values


def build_records(cfg: Mapping[str, Any], count: int, seed: int) -> list[tuple[dict, dict]]:
    """``count`` (LLaVA record, metadata) pairs drawn from the family's training split."""
    family, mix = cfg["family"], cfg["mix"]
    specs = prompt_specs(family)
    template = family["template"]
    pool = training_word_pool(mix, family)
    weights = _weights(mix)
    answer_format = str(mix.get("answer", '"{word}"'))
    rng = random.Random(f"instruct-mix-records/{seed}")
    per_task = [count // len(specs) + (1 if i < count % len(specs) else 0) for i in range(len(specs))]
    drawn = {
        spec.name: iter(family_examples(spec.name, "train", seed=seed, count=n))
        for spec, n in zip(specs, per_task, strict=True)
    }
    order = [spec for spec, n in zip(specs, per_task, strict=True) for _ in range(n)]
    rng.shuffle(order)
    out = []
    for index, spec in enumerate(order):
        example = next(drawn[spec.name])
        system = rng.choices(SYSTEMS, weights=weights)[0]
        if system == "neutral":
            set_name, words = "train_pool", tuple(rng.sample(pool, 2))
        else:
            set_name, words = rng.choice(resolve_sets(family["verbalizer_sets"], spec.golden)[system])
        prompt = render_prompt(template, spec, example.text, words)
        answer = answer_format.format(word=words[example.label])
        record = {
            "id": f"instruct_mix_{seed}_{index:06d}",
            "conversations": [{"from": "human", "value": prompt}, {"from": "gpt", "value": answer}],
        }
        meta = {"id": record["id"], "task": spec.name, "uid": example.uid, "system": system, "set": set_name,
                "words": list(words), "label": example.label, "text": example.text}  # fmt: skip
        out.append((record, meta))
    return out


def mix_key(cfg: Mapping[str, Any]) -> str:
    """Hash of everything that shapes the generated files."""
    family = cfg["family"]
    shaped = {
        "version": FORMAT_VERSION, "split_seed": SPLIT_SEED, "eval_fraction": EVAL_FRACTION,
        "tasks": [spec.__dict__ for spec in prompt_specs(family)], "template": dict(family["template"]),
        "sets": family["verbalizer_sets"], "mix": cfg["mix"],
    }  # fmt: skip
    text = json.dumps(shaped, sort_keys=True, default=list)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def generate(root: Path, cfg: Mapping[str, Any]) -> None:
    """Write ``train.json``, ``val.json``, ``meta.jsonl`` and ``card.json`` into ``root``."""
    mix = cfg["mix"]
    seed = int(mix.get("seed", 0))
    train = build_records(cfg, int(mix["num_train"]), seed)
    val = build_records(cfg, int(mix.get("num_val", 0)), seed + 1_000_003)
    root.mkdir(parents=True, exist_ok=True)
    (root / "train.json").write_text(json.dumps([r for r, _ in train], indent=1), encoding="utf-8")
    (root / "val.json").write_text(json.dumps([r for r, _ in val], indent=1), encoding="utf-8")
    with (root / "meta.jsonl").open("w", encoding="utf-8") as handle:
        for split, rows in (("train", train), ("val", val)):
            for _, meta in rows:
                handle.write(json.dumps({"split": split, **meta}) + "\n")
    pool = training_word_pool(mix, cfg["family"])
    card = {
        "key": mix_key(cfg),
        "records": {"train": len(train), "val": len(val)},
        "by_task": dict(Counter(m["task"] for _, m in train)),
        "by_system": dict(Counter(m["system"] for _, m in train)),
        "word_pool": {
            "size": len(pool),
            "listed": list(mix.get("word_pool") or []),
            "generated": int(mix.get("generated_words", 0) or 0),
            "first_50": pool[:50],
        },
        "excluded_words": sorted(evaluation_words(cfg["family"])),
        "split": {s: len(v) for s, v in split_objects().items()} | {"seed": SPLIT_SEED},
    }
    (root / "card.json").write_text(json.dumps(card, indent=1), encoding="utf-8")


def ensure_instruct_mix(cfg: Mapping[str, Any]) -> Path:
    """Return ``<data.root>/instruct_mix-<key>`` holding the mix, generating it atomically on first use."""
    target = Path(cfg["root"]) / f"instruct_mix-{mix_key(cfg)}"
    if (target / "train.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        generate(staging, cfg)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first
            if not (target / "train.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
