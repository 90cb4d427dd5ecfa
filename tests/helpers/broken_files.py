"""Writers of broken inputs for reliability tests: images, LLaVA records and checkpoint files.

Each writer makes the smallest file that reproduces one failure a real dataset or run directory can hold:
a JPEG cut off mid-stream (passes ``Image.verify()``), a PNG too large for PIL's decompression-bomb limit
(a 1-bit image, so it costs a few kilobytes on disk and 24 MB to write), a 16-bit grayscale PNG, and
checkpoint files that are empty, truncated, not a torch file or a torch file without a state dict.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def write_png(path: Path, size: tuple[int, int] = (32, 32), color: tuple = (255, 0, 0)) -> Path:
    Image.new("RGB", size, color).save(path)
    return path


def write_truncated_jpeg(path: Path, size: tuple[int, int] = (256, 256), keep: float = 0.5) -> Path:
    """A noisy JPEG cut to ``keep`` of its bytes: ``Image.verify()`` passes, decoding fails."""
    noise = np.random.default_rng(0).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG", quality=95)
    data = buffer.getvalue()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_bomb_png(path: Path, side: int = 14000) -> Path:
    """A ``side``×``side`` 1-bit PNG: over PIL's decompression-bomb limit, tiny on disk."""
    Image.new("1", (side, side), 0).save(path, optimize=False)
    return path


def write_16bit_png(path: Path, value: int = 32768, size: tuple[int, int] = (32, 32)) -> Path:
    """A uniform 16-bit grayscale PNG (PIL mode ``I;16``)."""
    Image.fromarray(np.full((size[1], size[0]), value, dtype=np.uint16)).save(path)
    return path


def record(
    rid: str, question: str = "What colour is it?", answer: str = "Red.", image: str | None = None
) -> dict:
    """One LLaVA-format record; with an image, the question gets the ``<image>`` placeholder first."""
    item: dict = {"id": rid, "conversations": [
        {"from": "human", "value": f"<image>\n{question}" if image else question},
        {"from": "gpt", "value": answer},
    ]}  # fmt: skip
    if image:
        item["image"] = image
    return item


def write_records(path: Path, records: list) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def write_broken_checkpoints(directory: Path, good: Path | None = None) -> dict[str, Path]:
    """Broken checkpoint files by kind; ``truncated`` needs a ``good`` checkpoint to cut."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "missing": directory / "missing.ckpt",
        "empty": directory / "empty.ckpt",
        "not_torch": directory / "notes.ckpt",
        "no_state_dict": directory / "tensor.ckpt",
        "foreign": directory / "foreign.ckpt",
    }
    files["empty"].write_bytes(b"")
    files["not_torch"].write_text("this is not a checkpoint\n", encoding="utf-8")
    torch.save(torch.zeros(3), files["no_state_dict"])
    torch.save({"state_dict": {"layer.weight": torch.zeros(2, 2)}, "global_step": 1}, files["foreign"])
    if good is not None:
        data = good.read_bytes()
        files["truncated"] = directory / "truncated.ckpt"
        files["truncated"].write_bytes(data[: len(data) // 2])
    return files
