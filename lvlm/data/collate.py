"""Batch collation for conversation samples.

Right-pads ``input_ids`` with the pad id and ``labels`` with ``IGNORE_INDEX``, builds the attention mask,
and stacks the images of the samples that have one, in sample order (the order in which the LVLM's
mask-based splice consumes them). Text-only samples contribute no image. Items that are skip markers
(``{"skipped": SkippedRecord}``, see ``lvlm.data.llava_json``) are left out of the tensors and passed on in
``batch["skipped"]`` for the main process to count; a batch of only markers has zero rows.
"""

from __future__ import annotations

from typing import Any

import torch

from lvlm.constants import IGNORE_INDEX


class ConversationCollator:
    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, all_items: list[dict[str, Any]]) -> dict[str, Any]:
        skipped = [item["skipped"] for item in all_items if "skipped" in item]
        items = [item for item in all_items if "skipped" not in item]
        length = max((len(item["input_ids"]) for item in items), default=1)
        input_ids = torch.full((len(items), length), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(items), length), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((len(items), length), dtype=torch.long)
        for row, item in enumerate(items):
            n = len(item["input_ids"])
            input_ids[row, :n] = item["input_ids"]
            labels[row, :n] = item["labels"]
            attention_mask[row, :n] = 1
        images = [item["pixel_values"] for item in items if "pixel_values" in item]
        pixel_values = torch.stack(images) if images else None
        batch: dict[str, Any] = {
            "input_ids": input_ids,
            "labels": labels,
            "attention_mask": attention_mask,
            "pixel_values": pixel_values,
        }
        if skipped:
            batch["skipped"] = skipped
        return batch
