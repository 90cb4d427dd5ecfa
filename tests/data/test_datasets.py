"""Synthetic data generation and LLaVA-JSON loading, including every kind of bad record."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from lvlm.data.images import ImageProcessor
from lvlm.data.llava_json import LlavaJsonDataset
from lvlm.data.scene import COLORS, read_scenes
from lvlm.data.synthetic import ensure_synthetic_dataset, question_answers, render_scene
from lvlm.errors import DataError
from lvlm.templates import get_template

PROC = ImageProcessor(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def test_synthetic_is_deterministic_by_seed(tmp_path):
    a = ensure_synthetic_dataset(tmp_path / "a", num_scenes=16, seed=3)
    b = ensure_synthetic_dataset(tmp_path / "b", num_scenes=16, seed=3)
    c = ensure_synthetic_dataset(tmp_path / "c", num_scenes=16, seed=4)
    assert (a / "train.json").read_bytes() == (b / "train.json").read_bytes()
    assert (a / "images/scene_00005.png").read_bytes() == (b / "images/scene_00005.png").read_bytes()
    assert (a / "train.json").read_bytes() != (c / "train.json").read_bytes()
    assert ensure_synthetic_dataset(tmp_path / "a", num_scenes=16, seed=3) == a  # cached


def test_synthetic_answers_follow_from_the_pixels(tmp_path):
    root = ensure_synthetic_dataset(tmp_path, num_scenes=12, seed=1)
    for scene in read_scenes(root / "scenes.jsonl"):
        image = Image.open(root / scene.image).convert("RGB")
        for obj in scene.objects:
            cell = 64 / 3
            col = ("left", "center", "right").index(obj.column)
            row = ("top", "middle", "bottom").index(obj.row)
            center = (int((col + 0.5) * cell), int((row + 0.5) * cell) + 2)
            assert image.getpixel(center) == COLORS[obj.color]
        answers = dict(question_answers(scene))
        count = len(scene.objects)
        assert answers["How many objects are there in the image?"].split()[2] in ("one", "two", "three")
        assert (
            count
            == ("one", "two", "three").index(answers["How many objects are there in the image?"].split()[2])
            + 1
        )


def test_render_is_pure(tmp_path):
    root = ensure_synthetic_dataset(tmp_path, num_scenes=4, seed=2)
    scene = read_scenes(root / "scenes.jsonl")[0]
    assert render_scene(scene, 64).tobytes() == Image.open(root / scene.image).convert("RGB").tobytes()


def _write(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "train.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    Image.new("RGB", (32, 32), (255, 0, 0)).save(tmp_path / "ok.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really a png")
    return path


def _dataset(path: Path, tokenizer, on_error: str = "raise") -> LlavaJsonDataset:
    image_id = tokenizer.convert_tokens_to_ids("<image>")
    return LlavaJsonDataset(
        path, path.parent, tokenizer, get_template("llava_llama_2"), PROC, 4, image_id, 512, on_error
    )


GOOD = {
    "id": "good",
    "image": "ok.png",
    "conversations": [{"from": "human", "value": "<image>\nColor?"}, {"from": "gpt", "value": "Red."}],
}
BAD = {
    "missing image file": {**GOOD, "id": "b1", "image": "nope.png"},
    "corrupt image": {**GOOD, "id": "b2", "image": "corrupt.png"},
    "conversation has no assistant turn": {"id": "b3", "conversations": [{"from": "human", "value": "hi"}]},
    "2 <image> placeholders but 1 image": {**GOOD, "id": "b4", "conversations": [
        {"from": "human", "value": "<image> and <image>"}, {"from": "gpt", "value": "x"}]},
}  # fmt: skip


@pytest.mark.parametrize("problem", sorted(BAD))
def test_bad_records_raise_one_line_naming_file_and_record(tmp_path, tiny_tokenizer, problem):
    path = _write(tmp_path, [GOOD, BAD[problem]])
    with pytest.raises(DataError) as info:
        _dataset(path, tiny_tokenizer)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message and f"record {BAD[problem]['id']}" in message and "fix:" in message
    expected = {"missing image file": "image file not found", "corrupt image": "corrupt image"}.get(
        problem, problem
    )
    assert expected in message


def test_skip_policy_counts_every_bad_record(tmp_path, tiny_tokenizer):
    path = _write(tmp_path, [GOOD, *BAD.values(), GOOD])
    dataset = _dataset(path, tiny_tokenizer, on_error="skip")
    assert len(dataset) == 2
    assert dataset.skips.total == len(BAD)
    assert sum(dataset.skips.counts.values()) == 4


def test_image_without_placeholder_gets_one_and_text_only_has_no_pixels(tmp_path, tiny_tokenizer):
    no_placeholder = {
        **GOOD,
        "id": "n",
        "conversations": [{"from": "human", "value": "Color?"}, {"from": "gpt", "value": "Red."}],
    }
    text_only = {
        "id": "t",
        "conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}],
    }
    dataset = _dataset(_write(tmp_path, [no_placeholder, text_only]), tiny_tokenizer)
    first, second = dataset[0], dataset[1]
    image_id = tiny_tokenizer.convert_tokens_to_ids("<image>")
    assert (first["input_ids"] == image_id).sum() == 4 and first["pixel_values"].shape == (3, 64, 64)
    assert "pixel_values" not in second and not (second["input_ids"] == image_id).any()


def test_real_llava_files_load(shared_data, tiny_tokenizer):
    path = shared_data / "llava" / "DERIVED_llava_bench_coco_30x3_as_llava_conversations.json"
    image_root = shared_data / "coco_images" / "llava_bench_coco_val2014"
    records = json.loads(path.read_text())
    image_id = tiny_tokenizer.convert_tokens_to_ids("<image>")
    dataset = LlavaJsonDataset(path, image_root, tiny_tokenizer, get_template("llava_llama_2"), PROC, 4,
                               image_id, 2048)  # fmt: skip
    assert len(dataset) == len(records) == 90
    item = dataset[random.Random(0).randrange(90)]
    assert item["pixel_values"].shape == (3, 64, 64) and torch.isfinite(item["pixel_values"]).all()
