"""``python -m lvlm.report <study dir | results.json ...> [--out DIR] [--base ROW] [--order a,b]``.

Builds the study report (table.md/.csv/.tex, per_seed.csv, figure.png, heat maps, report.html,
summary.txt; ``--title T`` sets its title; ``--directions experiments/<study>/study.yaml`` checks that
study's expected directions) and prints the plain-text table plus every file written.
``--wandb`` also logs it to W&B (offline unless ``WANDB_MODE`` says otherwise). Bad input prints
``error: <file>: <problem>; fix: ...`` and exits with code 2.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from lvlm.report.build import build_report, print_report
from lvlm.report.directions import read_directions
from lvlm.utils.runtime import apply_offline_defaults, report_user_errors


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m lvlm.report",
        description="Turn evaluation results.json files into the study's table, figure and HTML report.",
    )
    parser.add_argument(
        "paths", nargs="+", help="study directories (searched recursively) or results.json files"
    )
    parser.add_argument("--out", help="output folder (default: <study dir>/report or outputs/report/<time>)")
    parser.add_argument("--base", help="row the Δ columns compare to (default: a row named 'base', if any)")
    parser.add_argument("--order", help="comma-separated row names to put first, in this order")
    parser.add_argument("--title", help="title of the table, figure and page")
    parser.add_argument(
        "--directions",
        help="a study.yaml (its report.directions) or a YAML list of directions to check and state in words",
    )
    parser.add_argument("--wandb", action="store_true", help="also log the report to W&B (job_type=report)")
    parser.add_argument("--wandb-project", default="lvlm", help="W&B project (default: lvlm)")
    return parser.parse_args(argv)


@report_user_errors
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    apply_offline_defaults()
    order = [name.strip() for name in args.order.split(",") if name.strip()] if args.order else None
    directions = read_directions(args.directions) if args.directions else []
    files = build_report(
        args.paths, args.out, base=args.base, order=order, title=args.title, directions=directions
    )
    print_report(files)
    if args.wandb:
        from lvlm.report.wandb_report import log_report_to_wandb

        print(f"wandb: {log_report_to_wandb(files, project=args.wandb_project)}")


if __name__ == "__main__":
    main()
