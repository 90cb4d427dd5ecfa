"""``ScoringModel`` adapter for lvlm training checkpoints.

Checkpoints are read by ``lvlm.models.checkpoint.load_lvlm_checkpoint`` (the one owner of the format).
``LVLMScoringModel`` wraps the LVLM for the text-only benchmark: prompts are wrapped in the
conversation template the model was trained with, or the one ``model.template`` / ``model.system_prompt``
choose (``lvlm.eval.models.wrapping``); with ``image_slot="blank"`` (the ablation) a uniform gray image is
placed before the prompt and spliced in through the LVLM's own image path. ``scoring_model_from_checkpoint``
honours ``model.device`` and ``model.dtype`` (e.g. bfloat16 on CUDA).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from lvlm.constants import IMAGE_TOKEN
from lvlm.data.images import ImageProcessor
from lvlm.errors import ConfigError
from lvlm.eval.models.hf import HFScoringModel, model_fingerprint, resolve_device
from lvlm.eval.models.wrapping import resolve_template, wrapping_record
from lvlm.models.checkpoint import load_lvlm_checkpoint
from lvlm.models.llm import resolve_dtype
from lvlm.models.lvlm import LVLM
from lvlm.templates import ChatTemplate

IMAGE_SLOTS = ("none", "blank")


class LVLMScoringModel(HFScoringModel):
    """An LVLM scored through its language model, with an optional blank image slot."""

    def __init__(
        self,
        lvlm: LVLM,
        tokenizer: object,
        template: ChatTemplate,
        image_slot: str = "none",
        fingerprint: str | None = None,
    ) -> None:
        """``fingerprint=None`` hashes the whole LVLM (weights, tokenizer, template, image slot) once."""
        if image_slot not in IMAGE_SLOTS:
            raise ConfigError(
                f"unknown image_slot '{image_slot}'; valid image_slot names: {', '.join(IMAGE_SLOTS)}"
            )
        if fingerprint is None:
            digest = model_fingerprint(
                lvlm, tokenizer, use_chat_template=False, system_prompt=template.system
            )
            fingerprint = hashlib.sha256(f"{digest}|{template.name}|{image_slot}".encode()).hexdigest()
        super().__init__(lvlm.llm, tokenizer, use_chat_template=False, fingerprint=fingerprint)
        self.lvlm = lvlm.eval()
        self.template, self.image_slot = template, image_slot
        vision = lvlm.vision
        self.blank = ImageProcessor(vision.image_size, vision.mean, vision.std).blank()

    @property
    def wrapping(self) -> dict[str, object]:
        """The LVLM's conversation template, its system prompt and the image slot."""
        return wrapping_record(self.template.name, self.template.system, self.image_slot, self.format_prompt)

    def format_prompt(self, prompt: str) -> str:
        user = f"{IMAGE_TOKEN}\n{prompt}" if self.image_slot == "blank" else prompt
        return self.template.generation_prompt(user)

    def encode(self, text: str) -> list[int]:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        image_id, n = self.lvlm.image_token_id, self.lvlm.num_image_tokens
        return [t for tok in ids for t in ([tok] * n if tok == image_id else [tok])]

    @torch.inference_mode()
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        slots = int((input_ids == self.lvlm.image_token_id).sum())
        images = slots // self.lvlm.num_image_tokens
        pixels = self.blank.unsqueeze(0).expand(images, -1, -1, -1).contiguous() if images else None
        pixels = pixels.to(self.device) if pixels is not None else None
        return self.lvlm.embed(input_ids.to(self.device), pixels)


def place_model(model: torch.nn.Module, dtype: str = "float32", device: str = "cpu") -> torch.nn.Module:
    """``model`` in ``model.dtype`` on ``model.device`` (a one-line error for CUDA without CUDA)."""
    torch_dtype, torch_device = resolve_dtype(str(dtype)), resolve_device(str(device))
    return model.to(device=torch_device, dtype=torch_dtype)


def scoring_model_from_checkpoint(
    path: Path,
    image_slot: str = "none",
    *,
    template: str | None = None,
    system_prompt: str | None = None,
    dtype: str = "float32",
    device: str = "cpu",
) -> LVLMScoringModel:
    """The LVLM of an lvlm checkpoint, wrapped in its training template unless ``template`` /
    ``system_prompt`` override it, in ``dtype`` on ``device``."""
    resolve_dtype(str(dtype)), resolve_device(str(device))  # bad settings fail before the slow load
    built = load_lvlm_checkpoint(path)
    chat = resolve_template(built.template, template, system_prompt)
    return LVLMScoringModel(place_model(built.model, dtype, device), built.tokenizer, chat, image_slot)
