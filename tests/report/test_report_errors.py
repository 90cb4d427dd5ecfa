"""Bad input: one line naming the file and the fix, raised as LvlmError; the CLI prints it and exits 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lvlm.errors import LvlmError
from lvlm.report import build_report
from lvlm.report.errors import DuplicateRunError, NoResultsError, ResultsSchemaError
from tests.helpers.paths import REPO_ROOT
from tests.report.study_fixture import add_study_key, write_run


def _one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert "\n" not in message and "fix:" in message and isinstance(error.value, LvlmError)
    return message


def test_directory_without_results(tmp_path: Path) -> None:
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(NoResultsError) as error:
        build_report([tmp_path / "empty"], tmp_path / "out")
    assert str(tmp_path / "empty") in _one_line(error)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NoResultsError) as error:
        build_report([tmp_path / "nope" / "results.json"], tmp_path / "out")
    assert "nope" in _one_line(error)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ('{"summary": {"natural": ', "not valid JSON"),
        ("[1, 2]", "not an object"),
        ('{"config": {}}', "no 'summary'"),
        ('{"summary": {"all": {"f1": 0.5}}}', "none of natural"),
        ('{"summary": {"natural": {"f1": 57}}}', "not a fraction"),
        ('{"summary": {"natural": {"f1_ci_low": 0.1}}}', "no 'f1'"),
        ('{"schema_version": 9, "summary": {}}', "newer"),
        ('{"summary": {"natural": {"f1": 0.5}}, "per_set": {"a/b": {"f1": 0.5}}}', "lacks task/set/f1"),
    ],
)
def test_malformed_results(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "row" / "results.json"
    path.parent.mkdir()
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ResultsSchemaError) as error:
        build_report([path], tmp_path / "out")
    message = _one_line(error)
    assert message.startswith(str(path)) and problem in message


def test_bad_study_object(tmp_path: Path) -> None:
    results = write_run(tmp_path / "row", "base", 0)
    add_study_key(results, {"row": "base", "seed": "one"})
    with pytest.raises(ResultsSchemaError) as error:
        build_report([results], tmp_path / "out")
    assert "study.seed" in _one_line(error)


def test_two_files_for_one_row_and_seed(tmp_path: Path) -> None:
    for folder in ("a", "b"):
        results = write_run(tmp_path / "study" / folder, "base", 0)
        add_study_key(results, {"row": "base", "seed": 0})
    with pytest.raises(DuplicateRunError) as error:
        build_report([tmp_path / "study"], tmp_path / "out")
    assert "row 'base' seed 0" in _one_line(error)


def test_unknown_base_or_order_row(tmp_path: Path) -> None:
    write_run(tmp_path / "study" / "base", "base", 0)
    for options in ({"base": "nope"}, {"order": ["nope"]}):
        with pytest.raises(LvlmError, match="unknown row 'nope'; valid row names: base"):
            build_report([tmp_path / "study"], tmp_path / "out", **options)


def test_cli_prints_one_error_line_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "broken" / "results.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"summary": "oops"}), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "lvlm.report", str(path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith(f"error: {path}: has no 'summary' object; fix: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
