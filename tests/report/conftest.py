"""Fixtures of the report tests: one synthetic study written once per session, and its built report."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvlm.report import ReportFiles, build_report
from tests.report.study_fixture import write_study


@pytest.fixture(scope="session")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="session")
def report(study_dir: Path) -> ReportFiles:
    return build_report([study_dir])
