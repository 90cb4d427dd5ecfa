"""Logging the report to W&B in offline mode: a job_type=report run in the study's group, with the table,
the figure and report.html as an artifact, written under the report folder without any network."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import wandb

from lvlm.report import build_report
from lvlm.report.wandb_report import artifact_name, log_report_to_wandb, table_data
from tests.report.study_fixture import STUDY_NAME, write_study


def test_artifact_name_is_valid() -> None:
    assert artifact_name("report-my study/v1!") == "report-my-study-v1"
    assert artifact_name("///") == "study"


def test_offline_run_holds_table_figure_and_page(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    calls: list[dict[str, Any]] = []
    real_init = wandb.init

    def spy_init(**kwargs: Any) -> Any:  # the real init, with its arguments recorded
        calls.append(kwargs)
        return real_init(**kwargs)

    monkeypatch.setattr(wandb, "init", spy_init)
    files = build_report([write_study(tmp_path / "study")], tmp_path / "out")
    columns, rows = table_data(files)
    assert columns[:3] == ["row", "label", "n_seeds"]
    assert [row[0] for row in rows] == ["base", "fovit", "nofovit"]

    run_dir = log_report_to_wandb(files, project="lvlm-test")
    assert calls[0]["job_type"] == "report" and calls[0]["group"] == STUDY_NAME
    assert calls[0]["mode"] == "offline"
    assert run_dir.name.startswith("offline-run-") and (tmp_path / "out") in run_dir.parents
    table_file = next((run_dir / "files" / "media" / "table" / "report").glob("table_*.table.json"))
    logged = json.loads(table_file.read_text(encoding="utf-8"))
    assert logged["columns"] == columns and len(logged["data"]) == 3
    assert next((run_dir / "files" / "media" / "images" / "report").glob("figure_*.png")).stat().st_size > 0
    assert len(list((run_dir / "files" / "media" / "images" / "report" / "heatmap").glob("*.png"))) == 3
    assert wait_for_bytes(next(run_dir.glob("*.wandb")), b"report.html")  # the artifact's manifest


def wait_for_bytes(path: Path, needle: bytes, timeout_s: float = 20.0) -> bool:
    """W&B's service may still be appending to the offline run file just after ``finish`` returns."""
    deadline = time.monotonic() + timeout_s
    while needle not in path.read_bytes():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True
