"""Item 1: ``data.on_error=skip`` covers failures found when an image is decoded or a record is tokenized.

A truncated JPEG (passes ``Image.verify()``), an image over PIL's decompression-bomb limit and an
``<image>`` placeholder past ``max_length`` are skipped and counted in skip mode, whichever DataLoader worker
met them, and stop the run with one line naming file and record in raise mode.
"""

from __future__ import annotations

import json

import pytest
from torch.utils.data import DataLoader

from lvlm.data.collate import ConversationCollator
from lvlm.data.llava_json import SkipReport
from lvlm.errors import DataError
from tests.helpers.broken_files import (
    record,
    write_bomb_png,
    write_png,
    write_records,
    write_truncated_jpeg,
)
from tests.helpers.cli import run_cli

LONG_QUESTION = "Describe everything you can see in this picture, in great detail please. " * 6


def _broken_images(tmp_path):
    write_png(tmp_path / "ok.png")
    write_truncated_jpeg(tmp_path / "cut.jpg")
    write_bomb_png(tmp_path / "huge.png")
    return [
        record("good1", image="ok.png"),
        record("cut", image="cut.jpg"),
        record("huge", image="huge.png"),
        record("good2"),
    ]


def test_open_time_check_skips_truncated_jpeg_and_oversized_image(tmp_path, make_dataset):
    path = write_records(tmp_path / "train.json", _broken_images(tmp_path))
    dataset = make_dataset(path, on_error="skip")
    assert len(dataset) == 2
    assert dict(dataset.skips.counts) == {"corrupt image": 1, "image too large": 1}
    assert "cut.jpg" in dataset.skips.examples["corrupt image"][0]
    assert "huge.png" in dataset.skips.examples["image too large"][0]


@pytest.mark.parametrize(("rid", "problem"), [("cut", "corrupt image"), ("huge", "image too large")])
def test_open_time_check_raises_one_line(tmp_path, make_dataset, rid, problem):
    records = [r for r in _broken_images(tmp_path) if r["id"] in ("good1", rid)]
    path = write_records(tmp_path / "train.json", records)
    with pytest.raises(DataError) as info:
        make_dataset(path)
    message = str(info.value)
    assert "\n" not in message and f"{path}: record {rid}: {problem}" in message and "fix:" in message


WIDE_IMAGE = 60  # image tokens per image: with max_length=96 an image record cannot fit, text can


def _image_cut_records(tmp_path):
    """Five text-only records that fit ``max_length=96`` and one image record whose image tokens do not
    (the image goes first, after the template's system prompt; found only when the sample is built)."""
    write_png(tmp_path / "ok.png")
    return [record(f"g{i}") for i in range(5)] + [record("wide", image="ok.png")]


def _loader(dataset, tokenizer):
    return DataLoader(
        dataset, batch_size=2, num_workers=2, collate_fn=ConversationCollator(tokenizer.pad_token_id)
    )


def test_image_past_max_length_is_skipped_and_counted_from_workers(tmp_path, make_dataset, tiny_tokenizer):
    path = write_records(tmp_path / "train.json", _image_cut_records(tmp_path))
    dataset = make_dataset(path, on_error="skip", max_length=96, num_image_tokens=WIDE_IMAGE)
    assert len(dataset) == 6  # found only when the record is tokenized
    report, rows = SkipReport(), 0
    for _epoch in range(2):
        for batch in _loader(dataset, tiny_tokenizer):
            report.absorb(batch, "skip")
            rows += batch["input_ids"].shape[0]
    assert rows == 10
    assert dict(report.counts) == {"image tokens cut by max_length": 1}  # once, not once per epoch
    assert "record wide" in report.examples["image tokens cut by max_length"][0]


def test_image_past_max_length_raises_one_line_from_workers(tmp_path, make_dataset, tiny_tokenizer):
    path = write_records(tmp_path / "train.json", _image_cut_records(tmp_path))
    dataset = make_dataset(path, max_length=96, num_image_tokens=WIDE_IMAGE)
    with pytest.raises(DataError) as info:
        for batch in _loader(dataset, tiny_tokenizer):
            SkipReport().absorb(batch, "raise")
    assert f"{path}: record wide: image tokens cut by max_length" in str(info.value)


@pytest.mark.slow
def test_train_py_skips_every_kind_with_two_workers(tmp_path):
    long_text = record("long", question=LONG_QUESTION)  # its answer is cut: found in a worker
    records = [*_broken_images(tmp_path), long_text, *(record(f"t{i}") for i in range(10))]
    path = write_records(tmp_path / "train.json", records)
    args = [
        "data=llava_instruct", f"data.train_json={path}", f"data.image_root={tmp_path}",
        "data.on_error=skip", "data.num_workers=2", "data.batch_size=4", "data.max_length=160",
        "data.val_fraction=0", "trainer.max_steps=6", "trainer.max_epochs=-1", "logger=none",
        "~callbacks.progress", f"hydra.run.dir={tmp_path / 'run'}",
    ]  # fmt: skip
    result = run_cli("train.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    report = json.loads((tmp_path / "run" / "skipped.json").read_text())
    assert report["by_reason"] == {
        "corrupt image": 1, "image too large": 1, "answer cut by max_length": 1,
    }  # fmt: skip
    assert report["total"] == 3
