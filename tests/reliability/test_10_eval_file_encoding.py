"""Item 10: original release files that are not valid UTF-8 (FinancialPhraseBank's agreement files are
ISO-8859-1) are read as ISO-8859-1 — per file, recorded per task — instead of failing, or, in skip mode,
silently losing every non-ASCII sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvlm.eval.runner import EvalPlan
from lvlm.eval.sources.loaders import load_examples
from lvlm.eval.tasks.definitions import GROUP_CONFIG, build_tasks, load_eval_config

LINES = [
    "Sales rose 5 % .@positive",
    "Profit at Lappeenranta m\u00e4ker fell .@negative",
    "Operating profit in Jyv\u00e4skyl\u00e4 improved to EUR 3.1 mn .@positive",
    "The company 's share fell 2 % .@negative",
]


@pytest.fixture(scope="module")
def fp():
    return build_tasks(load_eval_config(config_name=GROUP_CONFIG)).get("fp")


def _write(root: Path, encoding: str) -> Path:
    path = root / "fp" / "Sentences_AllAgree.txt"
    path.parent.mkdir(parents=True)
    path.write_bytes(("\n".join(LINES) + "\n").encode(encoding))
    return path


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_iso_8859_1_file_is_read_and_the_encoding_recorded(tmp_path, fp, on_error):
    _write(tmp_path, "iso-8859-1")
    result = load_examples(fp, data_dir=tmp_path, source="local", on_error=on_error)
    sentences = {example.inputs["sentence"] for example in result.examples}
    assert len(result.examples) == 4 and not result.skipped
    assert "Operating profit in Jyv\u00e4skyl\u00e4 improved to EUR 3.1 mn ." in sentences
    assert result.encoding == "iso-8859-1"
    report = EvalPlan([fp], {"fp": result}, {}, []).data_report()
    assert report["fp"]["encoding"] == "iso-8859-1"  # → results.json data.fp.encoding


def test_utf8_file_is_recorded_as_utf8(tmp_path, fp):
    _write(tmp_path, "utf-8")
    result = load_examples(fp, data_dir=tmp_path, source="local")
    assert len(result.examples) == 4 and result.encoding == "utf-8"
