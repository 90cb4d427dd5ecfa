"""``python study.py <study> [--dry-run] [--only STEP ...] [--force STEP ...] [--launcher L] [--out DIR]``.

Loads and checks the study file (every problem: one line ``error: <file>: row '<row>': <problem>; fix:
<fix>``, exit 2, before anything runs), plans the steps (done / stale / to do), prints the plan with
``--dry-run``, otherwise runs what is not done and ends with the report table and the path of every file.
Exit codes: 0 done, 1 a step failed, 2 bad input, 128+N interrupted by signal N. See docs/study.md.
"""

from __future__ import annotations

import argparse
import fcntl
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lvlm.study.configs import check_study_configs
from lvlm.study.execute import ORDER, Runner, check_launcher, launcher_overrides, single_command
from lvlm.study.graph import Step, build_steps
from lvlm.study.spec import LAUNCHERS, Study, StudyError, load_study
from lvlm.study.state import DONE, PlanEntry, expected_outputs, make_plan, select
from lvlm.utils.runtime import PROJECT_ROOT, apply_offline_defaults, report_user_errors

LOCK_FILE = ".study.lock"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python study.py",
        description="Run a whole study (train → export → evaluate → report), resuming where it stopped.",
        epilog="Study format: experiments/README.md; the runner: docs/study.md.",
    )
    parser.add_argument("study", help="experiments/<name>, its study.yaml, or a bare study name")
    parser.add_argument("--dry-run", action="store_true", help="print the plan (step, deps, state, command)")
    parser.add_argument("--only", nargs="+", metavar="STEP",
                        help="run only these steps (name, prefix such as train/fovit or eval, glob, or row) "
                             "and what they need that is not done")  # fmt: skip
    parser.add_argument("--force", nargs="+", metavar="STEP", default=[],
                        help="rerun these steps even if done (their dependents follow)")  # fmt: skip
    parser.add_argument(
        "--launcher", choices=LAUNCHERS, help="Hydra launcher for multiruns (default: study's)"
    )
    parser.add_argument("--out", help="study output folder (default: <paths.output_dir>/study/<name>)")
    parser.add_argument(
        "--verbose", "-v", action="store_true", help="stream the steps' output to the console"
    )
    return parser.parse_args(argv)


def default_out(study: Study) -> Path:
    root = Path(os.environ.get("LVLM_ROOT") or PROJECT_ROOT)
    return Path(os.environ.get("LVLM_OUTPUT_DIR") or root / "outputs") / "study" / study.name


def shown(text: str, out: Path) -> str:
    return text.replace(str(out), "$STUDY").replace(sys.executable, "python")


def deps_text(step: Step) -> str:
    if step.kind == "report" and len(step.deps) > 2:
        return f"every eval ({len(step.deps)})"
    return ", ".join(step.deps) or "-"


def plan_table(plan: dict[str, PlanEntry], out: Path) -> str:
    rows = [("step", "depends on", "state", "command")]
    for name, entry in plan.items():
        state = entry.state if entry.selected or entry.state == DONE else f"{entry.state} (not selected)"
        if entry.state != DONE and entry.reason:
            state = f"{state}: {entry.reason.split(';')[0]}"
        command = " ".join(single_command(entry.step, out))
        rows.append((name, deps_text(entry.step), state, shown(command, out)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for index, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:3])) + "  " + row[3])
        if index == 0:
            lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 7)
    return "\n".join(lines)


def planned_launches(runner: Runner) -> list[str]:
    """The processes a run would start, wave by wave, if every step succeeds."""
    plan = runner.plan
    done = {n for n, e in plan.items() if not e.runs}
    pending = [n for n, e in plan.items() if e.runs]
    launches = []
    while pending:
        ready = [n for n in pending if all(d in done for d in plan[n].step.deps)]
        if not ready:
            launches.append(f"(blocked: {', '.join(pending)} wait for steps outside --only)")
            break
        kind = min((plan[n].step.kind for n in ready), key=ORDER.index)
        wave: list[Step] = [plan[n].step for n in ready if plan[n].step.kind == kind]
        if kind in ("train", "eval"):
            groups: dict[tuple[int, ...], list[str]] = {}
            seeds_by_row: dict[str, list[int]] = {}
            for step in wave:
                seeds_by_row.setdefault(step.row or "", []).append(int(step.seed or 0))
            for row, seeds in seeds_by_row.items():
                groups.setdefault(tuple(sorted(seeds)), []).append(row)
            for seeds, rows in groups.items():
                launches.append(" ".join(runner.multirun_command(kind, rows, seeds)))
        else:
            launches.extend(" ".join(single_command(step, runner.out)) for step in wave)
        done.update(s.name for s in wave)
        pending = [n for n in pending if n not in done]
    return [shown(line, runner.out).replace(str(PROJECT_ROOT) + "/", "") for line in launches]


def print_dry_run(study: Study, runner: Runner) -> None:
    plan, out = runner.plan, runner.out
    counts = {state: sum(e.state == state for e in plan.values()) for state in ("done", "stale", "to do")}
    print(f"study {study.name} ({study.display_path}): {len(plan)} steps — "
          + ", ".join(f"{v} {k}" for k, v in counts.items()))  # fmt: skip
    print(f"STUDY={out}   (steps run with $STUDY as working directory; launcher {runner.launcher})\n")
    print(plan_table(plan, out))
    launches = planned_launches(runner)
    print(
        "\nprocesses this run would start, in order:" if launches else "\nnothing to run: every step is done"
    )
    for index, line in enumerate(launches, 1):
        print(f"  {index}. {line}")


def print_outputs(runner: Runner) -> None:
    files = runner.report_files
    report_dir = runner.out / "report"
    if files is not None:
        from lvlm.report import print_report

        print_report(files)
    elif (report_dir / "summary.txt").is_file():
        print((report_dir / "summary.txt").read_text(encoding="utf-8"), end="")
    print(f"\nstudy folder: {runner.out}")
    for name, entry in runner.plan.items():
        state = "done" if entry.state == DONE else entry.state
        outputs = [runner.out / name / rel for rel in expected_outputs(entry.step)] or [runner.out / name]
        print(f"  {name.ljust(24)} {state.ljust(6)} " + "  ".join(str(p) for p in outputs))
    print(f"  {'log'.ljust(24)} {'':6} {runner.out / 'study.log'}")


def acquire_lock(out: Path, source: str) -> Any:
    out.mkdir(parents=True, exist_ok=True)
    handle = (out / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        raise StudyError(source, f"another study.py (pid {holder}) is running on {out}",
                         "wait for it to finish or stop it, then rerun") from None  # fmt: skip
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def prepare(args: argparse.Namespace) -> tuple[Study, Runner]:
    """Load, check and plan (everything that can fail on bad input, before anything runs)."""
    study = load_study(args.study)
    facts = check_study_configs(study)
    out = Path(args.out).resolve() if args.out else default_out(study)
    steps = build_steps(study, out)
    source = study.display_path
    only = select(steps, args.only, "--only", source) if args.only else None
    force = select(steps, args.force, "--force", source) if args.force else set()
    plan = make_plan(steps, out, force=force, only=only)
    launcher = args.launcher or study.launcher
    runner = Runner(study, plan, out, launcher=launcher, facts=facts, echo=args.verbose)
    launcher_overrides(launcher)  # reads conf/local/launcher/<launcher>.yaml early
    return study, runner


@report_user_errors
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    apply_offline_defaults()
    study, runner = prepare(args)
    if args.dry_run:
        print_dry_run(study, runner)
        return
    check_launcher(runner.launcher, study.display_path)
    lock = acquire_lock(runner.out, study.display_path)
    try:
        to_run = [n for n, e in runner.plan.items() if e.runs]
        print(f"study {study.name}: {len(runner.plan)} steps, {len(to_run)} to run → {runner.out}")
        code = runner.run()
    finally:
        lock.close()
    if code == 0:
        print_outputs(runner)
    sys.exit(code)
