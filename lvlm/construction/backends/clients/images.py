"""Images as OpenAI chat content parts, and back.

``image_part`` reads an image file with PIL, optionally shrinks it so its longer side is at most ``max_side``,
re-encodes it (PNG by default) and returns an ``image_url`` content part carrying a base64 data URL.
Unreadable, missing or corrupt files raise ``DataError`` naming the file. ``image_from_data_url`` decodes such
a part back to a PIL image for local backends.
"""

from __future__ import annotations

import base64
import binascii
import io
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from lvlm.errors import DataError, LvlmError

_FORMATS = {"png": ("PNG", "image/png"), "jpeg": ("JPEG", "image/jpeg")}
_DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def load_rgb_image(path: Path) -> Image.Image:
    """Open and fully decode an image as RGB; raise ``DataError`` naming the file when that fails."""
    path = Path(path)
    if not path.is_file():
        raise DataError(
            str(path), "image file not found", "check the image directory and the record's image name"
        )
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except _DECODE_ERRORS as exc:
        raise DataError(
            str(path),
            f"cannot decode image ({type(exc).__name__}: {exc})",
            "re-download or remove this image",
        ) from None


def encode_data_url(image: Image.Image, fmt: str = "png") -> str:
    """Encode a PIL image as a ``data:<mime>;base64,...`` URL."""
    if fmt not in _FORMATS:
        raise LvlmError(f"unknown image format '{fmt}'; valid formats: {', '.join(sorted(_FORMATS))}")
    pil_format, mime = _FORMATS[fmt]
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, **({"quality": 95} if pil_format == "JPEG" else {}))
    return f"data:{mime};base64,{base64.b64encode(buffer.getvalue()).decode('ascii')}"


def image_part(path: Path, max_side: int | None = None, *, fmt: str = "png") -> dict:
    """An OpenAI ``image_url`` content part for the image at ``path``, re-encoded (and shrunk if asked)."""
    if max_side is not None and max_side < 1:
        raise LvlmError(f"max_side must be a positive number of pixels, got {max_side}")
    image = load_rgb_image(path)
    if max_side is not None and max(image.size) > max_side:
        image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return {"type": "image_url", "image_url": {"url": encode_data_url(image, fmt)}}


def image_from_data_url(url: str, *, where: str = "image_url part") -> Image.Image:
    """Decode a base64 ``data:`` URL back to an RGB PIL image (remote URLs are not fetched)."""
    if not url.startswith("data:") or ";base64," not in url:
        raise LvlmError(
            f"{where}: only base64 data URLs are supported locally; build parts with image_part()"
        )
    payload = url.split(";base64,", 1)[1]
    try:
        with Image.open(io.BytesIO(base64.b64decode(payload, validate=True))) as image:
            image.load()
            return image.convert("RGB")
    except (binascii.Error, *_DECODE_ERRORS) as exc:
        raise LvlmError(f"{where}: data URL does not hold a decodable image ({type(exc).__name__})") from None
