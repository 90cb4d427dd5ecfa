"""Constants shared by every layer of the package.

The image placeholder (``<image>``) and the label value that excludes a token from the loss are used by the
tokenizer, the chat templates, the datasets, the LVLM and the evaluators; they are defined here once so
that no lower layer has to import a higher one to learn them.
"""

from __future__ import annotations

IMAGE_TOKEN = "<image>"
"""Placeholder for one image in a conversation; expanded to one token per image patch when encoding."""

IGNORE_INDEX = -100
"""Label value of tokens that are not supervised (cross-entropy ignores it)."""
