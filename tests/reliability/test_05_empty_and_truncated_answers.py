"""Item 5: empty answers and answers cut away by ``max_length`` are rejected or skipped and counted, and
the loss of a batch with no supervised token is 0 (no gradient), never NaN."""

from __future__ import annotations

import pytest
import torch

from lvlm.constants import IGNORE_INDEX
from lvlm.data.llava_json import SkipReport
from lvlm.errors import DataError
from tests.helpers.broken_files import record, write_records

LONG = "Tell me about this. " * 60  # about 240 tokens of question


@pytest.mark.parametrize("answer", ["", "   \n"])
def test_empty_answer_is_rejected_with_one_line(tmp_path, make_dataset, answer):
    path = write_records(tmp_path / "train.json", [record("ok"), record("empty", answer=answer)])
    with pytest.raises(DataError) as info:
        make_dataset(path)
    assert f"{path}: record empty: empty assistant answer" in str(info.value)
    assert "\n" not in str(info.value)


def test_empty_answer_is_skipped_and_counted(tmp_path, make_dataset):
    path = write_records(tmp_path / "train.json", [record("ok"), record("empty", answer="")])
    dataset = make_dataset(path, on_error="skip")
    assert len(dataset) == 1 and dict(dataset.skips.counts) == {"empty assistant answer": 1}


def test_answer_cut_by_max_length_raises(tmp_path, make_dataset):
    path = write_records(tmp_path / "train.json", [record("long", question=LONG)])
    dataset = make_dataset(path, max_length=64)
    with pytest.raises(DataError) as info:
        dataset[0]
    assert f"{path}: record long: answer cut by max_length" in str(info.value)


def test_answer_cut_by_max_length_is_skipped_and_counted(tmp_path, make_dataset):
    path = write_records(tmp_path / "train.json", [record("ok"), record("long", question=LONG)])
    dataset = make_dataset(path, on_error="skip", max_length=64)
    assert "input_ids" in dataset[0]
    report = SkipReport()
    report.absorb({"skipped": [dataset[1]["skipped"]]}, "skip")
    assert dict(report.counts) == {"answer cut by max_length": 1}


@pytest.fixture(scope="module")
def tiny_module(tiny_model_cfg):
    from lvlm.models.presets import build_model
    from lvlm.training.module import LVLMModule

    built = build_model(tiny_model_cfg)
    return LVLMModule(built.model, {"vision": False, "projector": True, "llm": True}, torch.optim.AdamW)


@pytest.mark.parametrize("rows", [2, 0])
def test_loss_without_supervised_tokens_is_zero_without_gradient(tiny_module, rows):
    batch = {
        "input_ids": torch.full((rows, 6), 5, dtype=torch.long),
        "labels": torch.full((rows, 6), IGNORE_INDEX, dtype=torch.long),
        "attention_mask": torch.ones((rows, 6), dtype=torch.long),
        "pixel_values": None,
    }
    tiny_module.zero_grad()
    loss = tiny_module.training_step(batch, 0)
    assert torch.isfinite(loss) and loss.item() == 0.0
    loss.backward()
    grads = [p.grad for p in tiny_module.parameters() if p.requires_grad and p.grad is not None]
    assert all(torch.count_nonzero(g) == 0 for g in grads)
