"""Item 7: an empty training set (``[]``, or every record skipped) ends with one line, not a
``num_samples=0`` traceback, and ``skipped.json`` is still written."""

from __future__ import annotations

import json

import pytest

from tests.helpers.broken_files import record, write_records
from tests.helpers.cli import run_cli

pytestmark = pytest.mark.slow


def _train(tmp_path, path, *extra):
    return run_cli(
        "train.py", "data=llava_instruct", f"data.train_json={path}", f"data.image_root={tmp_path}",
        "data.num_workers=0", "trainer.max_steps=2", "trainer.max_epochs=-1", "logger=none",
        "~callbacks.progress", f"hydra.run.dir={tmp_path / 'run'}", *extra,
    )  # fmt: skip


def _error_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


def test_empty_list_is_one_line(tmp_path):
    path = write_records(tmp_path / "train.json", [])
    result = _train(tmp_path, path)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert _error_lines(result) == [
        f"error: {path}: no training records (0 in the file, 0 skipped); "
        "fix: point data.train_json at a non-empty LLaVA-format list"
    ]
    assert json.loads((tmp_path / "run" / "skipped.json").read_text())["total"] == 0


def test_every_record_skipped_is_one_line_and_counted(tmp_path):
    path = write_records(tmp_path / "train.json", [record(f"r{i}", image="gone.png") for i in range(3)])
    result = _train(tmp_path, path, "data.on_error=skip")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    (line,) = _error_lines(result)
    assert line.startswith(f"error: {path}: no training records (3 in the file, 3 skipped)")
    report = json.loads((tmp_path / "run" / "skipped.json").read_text())
    assert report["by_reason"] == {"image file not found": 3}
