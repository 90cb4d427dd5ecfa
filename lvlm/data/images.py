"""Image loading and preprocessing for the vision tower.

``ImageProcessor`` opens a file, converts it to RGB, resizes the shorter side and centre-crops to the
tower's square input size (CLIP's preprocessing), and normalises with the tower's mean/std. Unreadable or
corrupt files raise ``DataError`` naming the file. ``verify_image`` is the cheap up-front check used when a
dataset is opened.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from lvlm.errors import DataError

_FIX = "replace or remove the file, or set data.on_error=skip"


def verify_image(path: Path, source: str, record: str | int) -> None:
    """Raise ``DataError`` if ``path`` is missing or not a decodable image."""
    if not path.is_file():
        raise DataError(source, f"image file not found: {path}", _FIX, record)
    try:
        with Image.open(path) as image:
            image.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(source, f"corrupt image {path} ({type(exc).__name__})", _FIX, record) from exc


class ImageProcessor:
    def __init__(self, image_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.image_size = image_size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def load(self, path: Path, source: str = "<image>", record: str | int | None = None) -> torch.Tensor:
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise DataError(source, f"cannot read image {path} ({type(exc).__name__})", _FIX, record) from exc
        return self.preprocess(rgb)

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        size = self.image_size
        scale = size / min(image.size)
        resized = image.resize(
            (max(size, round(image.width * scale)), max(size, round(image.height * scale))),
            Image.Resampling.BICUBIC,
        )
        left, top = (resized.width - size) // 2, (resized.height - size) // 2
        cropped = resized.crop((left, top, left + size, top + size))
        array = np.asarray(cropped, dtype=np.float32) / 255.0
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        return (tensor - self.mean) / self.std

    def blank(self) -> torch.Tensor:
        """A uniform gray image (the ``image_slot=blank`` ablation)."""
        return self.preprocess(Image.new("RGB", (self.image_size, self.image_size), (128, 128, 128)))
