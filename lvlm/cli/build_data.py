"""``python build_data.py``: build FOVIT / NoFOVIT / FOIT / NoFOIT with Hydra (``conf/build_data.yaml``).

Runs ``lvlm.construction.pipeline.build.build_datasets`` with the composed config, then prints where the
datasets and their cards are and a summary table (samples, compliance, drops, backend failures by class
with the last message of each). ``LvlmError`` becomes one line on stderr and exit code 2 (a 401/403 from the
backend stops the build at once); a build some items of which did not finish exits 3; Ctrl-C exits 130 and
SIGTERM 143, both after the requests in flight were answered and recorded. Rerunning the same command
resumes an interrupted or partial build.
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf
from rich.console import Console
from rich.table import Table

from lvlm.construction.pipeline.build import build_datasets
from lvlm.utils.runtime import PROJECT_ROOT, apply_offline_defaults, report_user_errors

EXIT_PARTIAL = 3  # some items did not finish (backend failures); rerunning the command resumes


def summary_table(paths: dict[str, Path]) -> Table:
    table = Table(title="datasets")
    for column in ("dataset", "samples", "first-try compliant", "after retries", "dropped"):
        table.add_column(column)
    for name, directory in paths.items():
        card: dict[str, Any] = json.loads((directory / "card.json").read_text(encoding="utf-8"))
        compliance = card["compliance"]
        table.add_row(
            name,
            str(card["num_samples"]),
            f"{compliance['first_try_rate']:.1%}",
            f"{compliance['after_retries_rate']:.1%}",
            str(card["skipped"]["total"]),
        )
    return table


def report(paths: dict[str, Path], console: Console | None = None) -> int:
    """Print the summary table, drops by reason, backend failures by class, usage, and where the datasets
    and cards are. Returns how many items did not finish (backend failures: a rerun retries them)."""
    console = console or Console()
    console.print(summary_table(paths))
    first = json.loads((next(iter(paths.values())) / "card.json").read_text(encoding="utf-8"))
    skipped = {key: value for key, value in first["skipped"].items() if key != "total"}
    if skipped:
        print("dropped items (stage:reason): " + ", ".join(f"{k}={v}" for k, v in skipped.items()))
    failures = [
        f"{stage}: {kind} ×{count} (last: {run.get('last_failure', {}).get(kind, '?')})"
        for stage, run in (first.get("last_run") or {}).items()
        for kind, count in (run.get("backend_failures") or {}).items()
    ]
    if failures:
        print("backend failures this run: " + "; ".join(failures), file=sys.stderr)
    unfinished = sum(v for k, v in skipped.items() if k.endswith(":not_finished"))
    usage = first.get("usage", {})
    print(
        f"usage: {usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} completion "
        f"tokens, ${usage.get('cost_usd', 0.0):.4f} (all runs of this build)"
    )
    for name, directory in paths.items():
        print(f"{name}: {directory / 'train.json'}  card: {directory / 'card.md'}")
    return unfinished


def save_config(cfg: DictConfig) -> None:
    """The resolved config in the Hydra run dir (it names the API key variable, never holds a key)."""
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True), encoding="utf-8")


@hydra.main(version_base="1.3", config_path=str(PROJECT_ROOT / "conf"), config_name="build_data")
@report_user_errors
def main(cfg: DictConfig) -> None:
    apply_offline_defaults()
    save_config(cfg)
    stages = Path(str(cfg.output_dir)) / "stages"
    try:
        paths = build_datasets(cfg)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the items in flight were finished and recorded
        signum = int(getattr(exc, "signum", signal.SIGINT))
        print(
            f"interrupted ({signal.Signals(signum).name}): finished records are kept in {stages}; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        sys.exit(128 + signum)
    unfinished = report(paths)
    if unfinished:
        print(
            f"error: partial build: {unfinished} item(s) did not finish; rerun the same command to resume "
            f"(finished records are kept in {stages}; the datasets hold only the finished items)",
            file=sys.stderr,
        )
        sys.exit(EXIT_PARTIAL)
