"""Fixtures of the reliability tests: a dataset factory over the project tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from lvlm.data.images import ImageProcessor
from lvlm.data.llava_json import LlavaJsonDataset
from lvlm.templates import get_template

NUM_IMAGE_TOKENS = 4


@pytest.fixture
def make_dataset(tiny_tokenizer):
    """``make_dataset(json_path, on_error=..., max_length=..., num_image_tokens=...)`` → a dataset."""
    image_id = tiny_tokenizer.convert_tokens_to_ids("<image>")
    processor = ImageProcessor(64, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    def make(
        path: Path, on_error: str = "raise", max_length: int = 512, num_image_tokens: int = NUM_IMAGE_TOKENS
    ) -> LlavaJsonDataset:
        return LlavaJsonDataset(
            path, path.parent, tiny_tokenizer, get_template("llava_llama_2"), processor, num_image_tokens,
            image_id, max_length, on_error,
        )  # fmt: skip

    return make
