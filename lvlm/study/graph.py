"""The steps of a study and their dependencies.

Steps (each with a folder ``<out>/<name>/``): ``build``; ``train/<row>/s<seed>`` for every trained row and
seed (after its ``llm_from`` row's export, its ``init_from`` row's training and ``build`` when
``needs_build``); ``export/<row>/s<seed>`` for rows used as ``llm_from``; ``eval/<row>/s<seed>`` for every
evaluated row (trained rows once per seed, evaluation-only rows once, at the first seed); ``report``.

Each step carries the exact overrides it runs with (``overrides``, fingerprinted), the W&B/naming
overrides that do not change results (``meta``), and the study-file settings it reads (``settings``).
Evaluations run with the study folder as working directory and name the checkpoint relative to it, so a
study's ``results.json`` files do not depend on where its folder is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lvlm.study.configs import hydra_value, wiring_overrides
from lvlm.study.spec import Row, Study, row_order

KINDS = ("build", "train", "export", "eval", "report")
CHECKPOINT = "checkpoints/last.ckpt"


@dataclass(frozen=True)
class Step:
    """One unit of work: a process to run (or the in-process report) and what it depends on."""

    name: str
    kind: str
    row: str | None = None
    seed: int | None = None
    deps: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    meta: tuple[str, ...] = ()
    settings: dict[str, Any] = field(default_factory=dict)

    def directory(self, out: Path) -> Path:
        return out / self.name


def train_name(row: str, seed: int) -> str:
    return f"train/{row}/s{seed}"


def export_name(row: str, seed: int) -> str:
    return f"export/{row}/s{seed}"


def eval_name(row: str, seed: int) -> str:
    return f"eval/{row}/s{seed}"


def row_train_overrides(study: Study, row: Row, out: Path, seed: int | str) -> list[str]:
    """``train_defaults`` + the row's ``train`` + the runner's wiring (llm_from, init_from, build data)."""
    return [*study.train_defaults, *(row.train or ()), *wiring_overrides(row, str(out), seed)]


def row_eval_overrides(study: Study, row: Row, seed: int | str) -> list[str]:
    """``eval_defaults`` + the row's ``evaluate`` (+ its own checkpoint, relative to the study folder)."""
    own = []
    if row.trained:
        own = ["model.kind=checkpoint", f"model.checkpoint=train/{row.name}/s{seed}/{CHECKPOINT}"]
    return [*study.eval_defaults, *(row.evaluate or ()), *own]


def wandb_train_meta(study: Study, row: Row, seed: int | str) -> list[str]:
    tags = ",".join(row.tags)
    return [f"name={study.name}-{row.name}-s{seed}", f"logger.wandb.group={study.name}",
            "logger.wandb.job_type=train", f"+logger.wandb.tags=[{tags}]"]  # fmt: skip


def wandb_eval_meta(study: Study, row: Row, seed: int | str) -> list[str]:
    tags = ",".join(row.tags)
    return [f"name={study.name}-{row.name}-s{seed}", f"wandb.group={study.name}",
            "wandb.job_type=eval", f"wandb.tags=[{tags}]"]  # fmt: skip


def eval_seeds(study: Study, row: Row) -> tuple[int, ...]:
    """Trained rows are evaluated at every seed, evaluation-only rows once (at the first seed)."""
    return study.seeds if row.trained else study.seeds[:1]


def build_steps(study: Study, out: Path) -> dict[str, Step]:
    """Every step of the study, keyed by name, in an order where dependencies come first."""
    steps: dict[str, Step] = {}
    if study.build is not None:
        steps["build"] = Step(
            "build", "build",
            overrides=(*study.build, f"output_dir={hydra_value(f'{out}/build/data')}"),
            meta=(f"hydra.run.dir={hydra_value(f'{out}/build')}",),
            settings={"build": list(study.build)},
        )  # fmt: skip
    exported = {r.llm_from for r in study.rows.values() if r.llm_from}
    for name in row_order(study):
        row = study.rows[name]
        if not row.trained:
            continue
        for seed in study.seeds:
            deps = []
            if row.llm_from:
                deps.append(export_name(row.llm_from, seed))
            if row.init_from:
                deps.append(train_name(row.init_from, seed))
            if row.needs_build:
                deps.append("build")
            steps[train_name(name, seed)] = Step(
                train_name(name, seed), "train", name, seed, tuple(deps),
                overrides=(*row_train_overrides(study, row, out, seed), f"seed={seed}"),
                meta=tuple(wandb_train_meta(study, row, seed)),
                settings={"row": name, "seed": seed, "train_defaults": list(study.train_defaults),
                          **{k: v for k, v in row.settings().items() if k != "evaluate"}},
            )  # fmt: skip
    for name in row_order(study):
        if name not in exported:
            continue
        for seed in study.seeds:
            steps[export_name(name, seed)] = Step(
                export_name(name, seed), "export", name, seed, (train_name(name, seed),),
                overrides=(f"ckpt={out}/{train_name(name, seed)}/{CHECKPOINT}",
                           f"out={out}/{export_name(name, seed)}", "overwrite=true"),
                settings={"row": name, "seed": seed},
            )  # fmt: skip
    evals = []
    for name, row in study.rows.items():
        if not row.evaluated:
            continue
        for seed in eval_seeds(study, row):
            step = Step(
                eval_name(name, seed), "eval", name, seed,
                (train_name(name, seed),) if row.trained else (),
                overrides=(*row_eval_overrides(study, row, seed), f"seed={seed}"),
                meta=tuple(wandb_eval_meta(study, row, seed)),
                settings={"row": name, "seed": seed, "eval_defaults": list(study.eval_defaults),
                          "evaluate": list(row.evaluate or ()), "trained": row.trained},
            )  # fmt: skip
            steps[step.name] = step
            evals.append(step.name)
    steps["report"] = Step(
        "report", "report", deps=tuple(evals),
        settings={
            "base": study.report_base, "order": study.evaluated_rows, "title": study.report_title,
            "rows": {n: {"label": r.label, "tags": list(r.tags)} for n, r in study.rows.items()},
            "seeds": list(study.seeds),
            "directions": [asdict(direction) for direction in study.report_directions],
        },
    )  # fmt: skip
    return topological(steps)


def topological(steps: dict[str, Step]) -> dict[str, Step]:
    """``steps`` reordered so each comes after its dependencies (stable otherwise)."""
    ordered: dict[str, Step] = {}
    pending = list(steps)
    while pending:
        for name in pending:
            if all(dep in ordered for dep in steps[name].deps):
                ordered[name] = steps[name]
                pending.remove(name)
                break
        else:  # pragma: no cover - spec.check_rows rejects cycles
            raise RuntimeError(f"steps form a cycle: {pending}")
    return ordered


def dependents(steps: dict[str, Step]) -> dict[str, set[str]]:
    """Every step's direct and indirect dependents."""
    direct: dict[str, set[str]] = {name: set() for name in steps}
    for step in steps.values():
        for dep in step.deps:
            direct[dep].add(step.name)
    closure: dict[str, set[str]] = {}
    for name in reversed(list(steps)):
        closure[name] = set(direct[name])
        for child in direct[name]:
            closure[name] |= closure[child]
    return closure
