"""Executing a study's plan: multiruns for training and evaluation, export and build processes, report.

Steps run in waves. Each wave takes the ready steps (dependencies done) of the earliest kind in
``build → train → export → eval → report``: all ready training steps run as one Hydra multirun of
``train.py`` (rows as generated ``+study_row=<row>`` overlays, swept with ``seed=...``; one multirun per
distinct seed list), all ready evaluations as one multirun of ``evaluate.py`` (``+study_eval=<row>``),
exports and the build one process each, the report in-process. A job of a multirun is recorded done as
soon as its ``_job.json`` marker says completed and its outputs exist (``lvlm.study.hydra_callback``).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from lvlm.study.configs import RowFacts, hydra_value, overlay_text, parse_overrides
from lvlm.study.graph import CHECKPOINT, Step, row_eval_overrides, row_train_overrides
from lvlm.study.hydra_callback import MARKER
from lvlm.study.process import Signals, run_logged, tail
from lvlm.study.spec import Study, StudyError, display
from lvlm.study.state import (
    DONE,
    PlanEntry,
    expected_outputs,
    move_aside,
    now_iso,
    outputs_exist,
    read_record,
    step_inputs,
    write_record,
)
from lvlm.utils.runtime import PROJECT_ROOT

ROWS_DIR = "_rows"
LOGS_DIR = "_logs"
STUDY_LOG = "study.log"
GROUP = {"train": "study_row", "eval": "study_eval"}
SCRIPT = {"train": "train.py", "eval": "evaluate.py", "build": "build_data.py", "export": "export.py"}
PLUGINS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher",
}
LOCAL_LAUNCHER_DIR = PROJECT_ROOT / "conf" / "local" / "launcher"
ORDER = ("build", "train", "export", "eval", "report")


def check_launcher(launcher: str, source: str) -> None:
    module = PLUGINS.get(launcher)
    if module and importlib.util.find_spec(module) is None:
        raise StudyError(
            source,
            f"launcher '{launcher}' needs the Hydra plugin {module.split('.')[-1]}",
            "pip install -e '.[cluster]' (hydra-joblib-launcher, hydra-submitit-launcher)",
        )


def launcher_overrides(launcher: str) -> list[str]:
    """``hydra/launcher=<launcher>`` plus the cluster settings in git-ignored conf/local/launcher/."""
    if launcher == "basic":
        return []
    found = [f"hydra/launcher={launcher}"]
    local = LOCAL_LAUNCHER_DIR / f"{launcher}.yaml"
    if local.is_file():
        settings = OmegaConf.to_container(OmegaConf.load(local), resolve=True) or {}
        for key, value in _flatten(settings).items():
            text = hydra_value(value) if isinstance(value, str) else json.dumps(value)
            found.append(f"++hydra.launcher.{key}={text}")
    return found


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(data, dict):
        return {prefix: data}
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        flat.update(_flatten(value, name) if isinstance(value, dict) and value else {name: value})
    return flat


def single_command(step: Step, out: Path) -> list[str]:
    """The one-process command equivalent to the step (what the plan shows; paths as run)."""
    if step.kind == "report":
        return ["lvlm.report.build_report(<eval dirs>, out_dir=report)"]
    script = SCRIPT[step.kind]
    extra = (
        [f"hydra.run.dir={hydra_value(str(step.directory(out)))}"] if step.kind in ("train", "eval") else []
    )
    return ["python", script, *step.overrides, *step.meta, *extra]


class Runner:
    """Runs the steps of ``plan`` that are selected and not done."""

    def __init__(self, study: Study, plan: dict[str, PlanEntry], out: Path, *, launcher: str,
                 facts: dict[str, RowFacts] | None = None, echo: bool = False,
                 print_fn: Callable[[str], None] = print) -> None:  # fmt: skip
        self.study, self.plan, self.out, self.facts = study, plan, out, facts or {}
        self.launcher, self.echo, self.print = launcher, echo, print_fn
        self.signals = Signals()
        self.invocation = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.failed: list[str] = []
        self.report_files: Any = None
        self._log_index = 0

    # ----------------------------------------------------------------------------------------------- log
    def log(self, event: str, step: str = "-", detail: str = "") -> None:
        line = f"{now_iso()} {self.invocation} {event} {step} {detail}".rstrip()
        with (self.out / STUDY_LOG).open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def _log_path(self, label: str) -> Path:
        self._log_index += 1
        return self.out / LOGS_DIR / f"{self.invocation}-{self._log_index:02d}-{label}.log"

    # ----------------------------------------------------------------------------------------------- run
    def run(self) -> int:
        """Execute the plan; returns the exit code (0 ok, 1 a step failed, 128+N interrupted)."""
        self.out.mkdir(parents=True, exist_ok=True)
        self.write_overlays()
        self.log("run-start", detail=f"pid={os.getpid()} launcher={self.launcher}")
        for name, entry in self.plan.items():
            if not entry.runs:
                self.log("skip", name, entry.state)
        self.signals.install()
        try:
            code = self._loop()
        finally:
            self.signals.restore()
        self.log("run-end", detail=f"exit={code}")
        return code

    def _loop(self) -> int:
        pending = [name for name, entry in self.plan.items() if entry.runs]
        while pending:
            ready = [n for n in pending if all(self._is_done(d) for d in self.plan[n].step.deps)]
            if not ready:
                blocked = pending[0]
                self.print(f"blocked: {blocked} waits for steps that are not done (run without --only?)")
                return 1
            kind = min((self.plan[n].step.kind for n in ready), key=ORDER.index)
            wave = [self.plan[n].step for n in ready if self.plan[n].step.kind == kind]
            if kind in ("train", "eval"):
                self.run_multirun(kind, wave)
            else:
                for step in wave:
                    self.run_single(step)
                    if self.signals.received or self.failed:
                        break
            pending = [n for n in pending if not self._is_done(n)]
            if self.signals.received:
                self.print(
                    f"interrupted by signal {self.signals.received}: finished steps are kept; "
                    "rerun the same command to continue"
                )
                return self.signals.exit_code
            if self.failed:
                return 1
        return 0

    def _is_done(self, name: str) -> bool:
        entry = self.plan[name]
        return entry.state == DONE

    # ------------------------------------------------------------------------------------------ records
    def _deps_run(self, step: Step) -> dict[str, Any]:
        return {dep: (read_record(self.out / dep) or {}).get("run_id") for dep in step.deps}

    def _dep_prints(self, step: Step) -> dict[str, str]:
        return {dep: self.plan[dep].fingerprint for dep in step.deps}

    def record(self, step: Step, status: str, command: Sequence[str], log: Path, started: str,
               seconds: float, **extra: Any) -> dict[str, Any]:  # fmt: skip
        record = {
            "step": step.name, "kind": step.kind, "row": step.row, "seed": step.seed, "status": status,
            "fingerprint": self.plan[step.name].fingerprint,
            "inputs": step_inputs(step, self.out, self._dep_prints(step)),
            "deps_run": self._deps_run(step), "run_id": uuid.uuid4().hex, "invocation": self.invocation,
            "command": list(command), "equivalent_command": single_command(step, self.out),
            "log": str(log.relative_to(self.out)), "started": started, "finished": now_iso(),
            "seconds": round(seconds, 3),
            "outputs": [f"{step.name}/{rel}" for rel in expected_outputs(step)], **extra,
        }  # fmt: skip
        write_record(step.directory(self.out), record)
        return record

    def mark_running(self, step: Step, command: Sequence[str], log: Path) -> None:
        write_record(step.directory(self.out), {
            "step": step.name, "kind": step.kind, "status": "running", "invocation": self.invocation,
            "fingerprint": self.plan[step.name].fingerprint, "command": list(command),
            "log": str(log.relative_to(self.out)), "started": now_iso(),
        })  # fmt: skip

    def finish(self, step: Step, ok: bool, command: Sequence[str], log: Path, started: str,
               seconds: float, exit_code: int | None, **extra: Any) -> None:  # fmt: skip
        if ok and outputs_exist(step, step.directory(self.out)):
            self.record(step, DONE, command, log, started, seconds, exit_code=exit_code, **extra)
            self.plan[step.name].state = DONE
            if step.kind == "eval":
                self.write_study_json(step)
            self.log("done", step.name, f"{seconds:.1f}s")
            self.print(f"  done   {step.name}  ({_duration(seconds)})")
            return
        status = "interrupted" if self.signals.received else "failed"
        if ok:  # exited 0 but an output is missing
            status = "failed"
            extra["error"] = f"missing outputs: {', '.join(expected_outputs(step))}"
        self.record(step, status, command, log, started, seconds, exit_code=exit_code, **extra)
        self.log(status, step.name, f"exit={exit_code}")
        if status == "failed":
            self.failed.append(step.name)
            self.print(f"  FAILED {step.name}: {extra.get('error') or f'exit code {exit_code}'}; "
                       f"log: {display(log)}\n{_indent(tail(log))}")  # fmt: skip
        else:
            self.print(f"  interrupted {step.name}")

    def write_study_json(self, step: Step) -> None:
        row = self.study.rows[step.row or ""]
        payload = {"name": self.study.name, "row": row.name, "label": row.label, "seed": step.seed,
                   "condition_tags": list(row.tags)}  # fmt: skip
        (step.directory(self.out) / "study.json").write_text(json.dumps(payload, indent=2) + "\n")

    # ------------------------------------------------------------------------------------------ overlays
    def write_overlays(self) -> None:
        """``_rows/study_row/<row>.yaml`` (training) and ``_rows/study_eval/<row>.yaml`` (evaluation)."""
        study, source = self.study, self.study.display_path
        for kind, folder in GROUP.items():
            target = self.out / ROWS_DIR / folder
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            for row in study.rows.values():
                if (kind == "train" and not row.trained) or (kind == "eval" and not row.evaluated):
                    continue
                seed = "${seed}"
                if kind == "train":
                    texts = row_train_overrides(study, row, self.out, seed)
                    # ckpt_path=auto: a rerun of a stopped step continues from its own last.ckpt
                    extra: dict[str, Any] = {"name": f"{study.name}-{row.name}-s{seed}", "ckpt_path": "auto"}
                    if self._row_has_wandb(row.name):
                        extra["logger"] = {"wandb": {"group": study.name, "job_type": "train",
                                                     "tags": list(row.tags)}}  # fmt: skip
                else:
                    texts = row_eval_overrides(study, row, seed)
                    extra = {
                        "name": f"{study.name}-{row.name}-s{seed}",
                        "wandb": {"group": study.name, "job_type": "eval", "tags": list(row.tags)},
                    }
                parsed = parse_overrides(texts, source, row.name, kind)
                header = (f"Generated by study.py for study '{study.name}', row '{row.name}' ({kind}); "
                          "rewritten on every run, do not edit.")  # fmt: skip
                (target / f"{row.name}.yaml").write_text(
                    overlay_text(parsed, extra, header), encoding="utf-8"
                )

    def _row_has_wandb(self, row: str) -> bool:
        facts = self.facts.get(row)
        return True if facts is None else facts.has_wandb

    # ------------------------------------------------------------------------------------------ multirun
    def run_multirun(self, kind: str, steps: list[Step]) -> None:
        seeds_by_row: dict[str, list[int]] = {}
        for step in steps:
            seeds_by_row.setdefault(step.row or "", []).append(int(step.seed or 0))
        groups: dict[tuple[int, ...], list[str]] = {}
        for row, seeds in seeds_by_row.items():
            groups.setdefault(tuple(sorted(seeds)), []).append(row)
        for seeds, rows in groups.items():
            jobs = [s for s in steps if s.row in rows and s.seed in seeds]
            self._one_multirun(kind, rows, seeds, jobs)
            if self.signals.received or self.failed:
                return

    def multirun_command(self, kind: str, rows: Sequence[str], seeds: Sequence[int]) -> list[str]:
        group = GROUP[kind]
        return [
            sys.executable, str(PROJECT_ROOT / SCRIPT[kind]), "--multirun",
            f"hydra.searchpath=[{hydra_value(f'file://{self.out / ROWS_DIR}')}]",
            f"+{group}={','.join(rows)}", f"seed={','.join(map(str, seeds))}",
            f"hydra.sweep.dir={hydra_value(str(self.out / kind))}",
            f"hydra.sweep.subdir=${{hydra.runtime.choices.{group}}}/s${{seed}}",
            "+hydra.callbacks.study_marker._target_=lvlm.study.hydra_callback.JobMarker",
            *launcher_overrides(self.launcher),
        ]  # fmt: skip

    def _one_multirun(self, kind: str, rows: Sequence[str], seeds: Sequence[int], jobs: list[Step]) -> None:
        cmd = self.multirun_command(kind, rows, seeds)
        log = self._log_path(f"{kind}-" + "-".join(rows)[:60])
        for step in jobs:
            self.prepare(step)
            self.mark_running(step, cmd, log)
            self.log("start", step.name, f"log={log.relative_to(self.out)}")
        names = ", ".join(s.name for s in jobs)
        self.print(f"▶ {kind}: {names}  [multirun, launcher {self.launcher}]\n    log: {display(log)}")
        open_jobs = {s.name: s for s in jobs}
        t0 = time.time()

        def poll() -> None:
            for name in list(open_jobs):
                step = open_jobs[name]
                marker = _read_json(step.directory(self.out) / MARKER)
                status = marker.get("status")
                if status in ("completed", "failed"):
                    del open_jobs[name]
                    seconds = float(marker.get("seconds") or time.time() - t0)
                    extra = {"error": marker.get("error")} if marker.get("error") else {}
                    self.finish(step, status == "completed", cmd, log, marker.get("started") or now_iso(),
                                seconds, 0 if status == "completed" else None, host=marker.get("host"),
                                **extra)  # fmt: skip

        code = run_logged(cmd, cwd=self.out, log_path=log, signals=self.signals, poll=poll, echo=self.echo)
        for step in list(open_jobs.values()):
            error = f"the multirun exited with code {code} before this job finished"
            self.finish(step, False, cmd, log, now_iso(), time.time() - t0, code, error=error)

    # ---------------------------------------------------------------------------------------- single
    def prepare(self, step: Step) -> None:
        """Move an earlier partial or stale folder of ``step`` aside (resumable build or training: kept)."""
        directory = step.directory(self.out)
        record = read_record(directory) or {}
        same_inputs = record.get("fingerprint") == self.plan[step.name].fingerprint
        if step.kind == "build" and same_inputs:
            return  # build_data.py resumes its own stages
        if step.kind == "train" and same_inputs and (directory / CHECKPOINT).is_file():
            (directory / MARKER).unlink(missing_ok=True)  # the old attempt's job marker is not this job's
            self.log("resume", step.name, f"from {CHECKPOINT} (ckpt_path=auto)")
            self.print(f"  resume {step.name} from its {CHECKPOINT}")
            return  # train.py continues from the checkpoint the stopped attempt saved
        if step.kind == "export":
            for partial in directory.parent.glob(f".{directory.name}.partial-*"):
                shutil.rmtree(partial, ignore_errors=True)
        moved = move_aside(directory, self.out)
        if moved is not None:
            self.log("moved-aside", step.name, str(moved.relative_to(self.out)))

    def run_single(self, step: Step) -> None:
        if step.kind == "report":
            self.run_report(step)
            return
        self.prepare(step)
        cmd = [sys.executable, str(PROJECT_ROOT / SCRIPT[step.kind]), *step.overrides, *step.meta]
        log = self._log_path(step.name.replace("/", "-"))
        if step.kind == "build":
            self.mark_running(step, cmd, log)
        self.log("start", step.name, f"log={log.relative_to(self.out)}")
        self.print(f"▶ {step.name}\n    log: {display(log)}")
        started, t0 = now_iso(), time.time()
        code = run_logged(cmd, cwd=self.out, log_path=log, signals=self.signals, echo=self.echo)
        self.finish(step, code == 0, cmd, log, started, time.time() - t0, code)

    # ---------------------------------------------------------------------------------------- report
    def eval_dirs(self, step: Step) -> list[Path]:
        return [self.out / dep for dep in step.deps if (self.out / dep / "results.json").is_file()]

    def run_report(self, step: Step) -> None:
        self.prepare(step)
        directory = step.directory(self.out)
        directory.mkdir(parents=True, exist_ok=True)
        log = self._log_path("report")
        self.log("start", step.name, f"log={log.relative_to(self.out)}")
        self.print("▶ report")
        started, t0 = now_iso(), time.time()
        for dep in step.deps:
            self.write_study_json(self.plan[dep].step)
        ok, error = True, None
        try:
            self.report_files = build_study_report(self.study, self.eval_dirs(step), directory, log)
        except Exception as exc:  # the report must not hide the finished evaluations
            ok, error = False, f"{type(exc).__name__}: {exc}"
            log.parent.mkdir(parents=True, exist_ok=True)
            with log.open("a", encoding="utf-8") as handle:
                handle.write(f"report failed: {error}\n")
        extra = {"error": error} if error else {}
        self.finish(step, ok, ["lvlm.report.build_report"], log, started, time.time() - t0, 0 if ok else 1,
                    **extra)  # fmt: skip


def build_study_report(study: Study, eval_dirs: list[Path], out_dir: Path, log: Path) -> Any:
    """``lvlm.report.build_report`` over the eval folders (+ W&B), or a plain listing without it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        from lvlm.report import build_report
    except ImportError:
        text = results_listing(eval_dirs)
        (out_dir / "summary.txt").write_text(text, encoding="utf-8")
        log.write_text("lvlm.report is not importable; wrote a plain listing\n" + text, encoding="utf-8")
        return None
    files = build_report(eval_dirs, out_dir=out_dir, base=study.report_base, order=study.evaluated_rows,
                         title=study.report_title or study.description or study.name,
                         directions=study.report_directions)  # fmt: skip
    with log.open("a", encoding="utf-8") as handle:
        handle.write(files.summary)
        if study.report_wandb:
            try:
                from lvlm.report.wandb_report import log_report_to_wandb

                handle.write(f"wandb: {log_report_to_wandb(files, group=study.name)}\n")
            except Exception as exc:  # W&B is a convenience; the files are the report
                handle.write(f"wandb logging failed: {type(exc).__name__}: {exc}\n")
    return files


def results_listing(eval_dirs: Sequence[Path]) -> str:
    """Row, seed and F1 × 100 per label system of each results.json (the report's fallback)."""
    lines = ["row | seed | natural | neutral | unnatural | all | results.json"]
    for directory in eval_dirs:
        results = _read_json(directory / "results.json")
        study = _read_json(directory / "study.json")
        summary = results.get("summary") or {}
        cells = [f"{100 * summary[k]['f1']:.1f}" if k in summary else "-"
                 for k in ("natural", "neutral", "unnatural", "all")]  # fmt: skip
        lines.append(f"{study.get('row', directory.parent.name)} | {study.get('seed', '?')} | "
                     f"{' | '.join(cells)} | {directory / 'results.json'}")  # fmt: skip
    return "\n".join(lines) + "\n"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.splitlines())
