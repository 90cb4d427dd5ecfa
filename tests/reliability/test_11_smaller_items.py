"""Item 11: skip-reason keys group without paths, 16-bit grayscale is scaled (not clipped to white), and
``eval.tasks=[]`` is an error (the eval part lives in ``test_11_eval_tasks.py``)."""

from __future__ import annotations

import torch

from lvlm.data.images import ImageProcessor
from tests.helpers.broken_files import record, write_16bit_png, write_records

IDENTITY = ImageProcessor(32, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0))


def test_16bit_grayscale_is_scaled_to_8bit(tmp_path):
    mid = IDENTITY.load(write_16bit_png(tmp_path / "mid.png", value=32896))  # 32896 / 257 = 128
    assert torch.allclose(mid, torch.full_like(mid, 128 / 255), atol=1e-6)
    dark = IDENTITY.load(write_16bit_png(tmp_path / "dark.png", value=1000))
    assert torch.allclose(dark, torch.full_like(dark, 4 / 255), atol=1e-6)


def test_skip_reason_keys_have_no_paths(tmp_path, make_dataset):
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    (tmp_path / "b.png").write_bytes(b"not an image at all")
    records = [record("a", image="a.png"), record("b", image="b.png"), record("c", image="missing.png")]
    records.append({**record("d"), "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt"}]})
    records.append({**record("e"), "conversations": [{"from": "human"}, {"from": "gpt", "value": "x"}]})
    dataset = make_dataset(write_records(tmp_path / "train.json", records), on_error="skip")
    assert dict(dataset.skips.counts) == {
        "corrupt image": 2, "image file not found": 1, "message N is malformed": 2,
    }  # fmt: skip
    assert any("a.png" in example for example in dataset.skips.examples["corrupt image"])
