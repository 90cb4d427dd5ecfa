"""Image loading and preprocessing for the vision tower.

``ImageProcessor`` opens a file, converts it to RGB (16-bit grayscale is scaled to 8 bit, not clipped),
resizes the shorter side and centre-crops to the tower's square input size (CLIP's preprocessing), and
normalises with the tower's mean/std. Unreadable, corrupt, truncated or oversized files (over PIL's
decompression-bomb limit) raise ``DataError`` naming the file. ``verify_image`` is the up-front check used
when a dataset is opened: it decodes the whole file, at reduced size where the format allows (JPEG draft
mode), so truncated files are found before training starts.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lvlm.errors import DataError

_FIX = "replace or remove the file, or set data.on_error=skip"
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


def _image_error(path: Path, exc: Exception, source: str, record: str | int | None) -> DataError:
    """One ``DataError`` per way a file fails to decode (reason without the path, for skip counts)."""
    detail = str(exc).splitlines()[0][:120] if str(exc) else ""
    detail = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    if isinstance(exc, Image.DecompressionBombError):
        fix = "downscale the image below PIL's limit, remove the record, or set data.on_error=skip"
        return DataError(source, f"image too large {path} ({detail})", fix, record, reason="image too large")
    return DataError(source, f"corrupt image {path} ({detail})", _FIX, record, reason="corrupt image")


def verify_image(path: Path, source: str, record: str | int, size: int = 64) -> None:
    """Raise ``DataError`` if ``path`` is missing or does not decode completely.

    The whole file is decoded (``Image.verify()`` alone misses truncated JPEGs), JPEG at the smallest DCT
    scale that still gives ``size`` pixels, so the check stays cheap.
    """
    if not path.is_file():
        raise DataError(source, f"image file not found: {path}", _FIX, record, reason="image file not found")
    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (size, size))
            image.load()
    except Exception as exc:  # PIL raises many types for broken files (OSError, SyntaxError, bomb, …)
        raise _image_error(path, exc, source, record) from exc


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB copy of ``image``; 16- and 32-bit grayscale are scaled to 8 bit instead of clipped to white."""
    if image.mode in _SIXTEEN_BIT or image.mode == "I":
        array = np.asarray(image).astype(np.float64)
        if image.mode in _SIXTEEN_BIT or array.max(initial=0) > 255:
            array = array / 257.0  # 0..65535 → 0..255
        image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    elif image.mode == "F":
        array = np.asarray(image).astype(np.float64)
        if array.max(initial=0) <= 1.0:
            array = array * 255.0
        image = Image.fromarray(np.clip(np.rint(array), 0, 255).astype(np.uint8))
    return image.convert("RGB")


class ImageProcessor:
    def __init__(self, image_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self.image_size = image_size
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def load(self, path: Path, source: str = "<image>", record: str | int | None = None) -> torch.Tensor:
        if not path.is_file():
            raise DataError(
                source, f"image file not found: {path}", _FIX, record, reason="image file not found"
            )
        try:
            with Image.open(path) as image:
                rgb = to_rgb(image)
        except Exception as exc:  # any decode failure of a broken file becomes one DataError
            raise _image_error(path, exc, source, record) from exc
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
