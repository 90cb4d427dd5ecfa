"""``ScoringModel`` adapter for lvlm training checkpoints.

Checkpoints are read by ``lvlm.models.checkpoint.load_lvlm_checkpoint`` (the one owner of the format).
``LVLMScoringModel`` wraps the LVLM for the text-only benchmark: prompts are wrapped in the
conversation template the model was trained with; with ``image_slot="blank"`` (the ablation) a uniform gray
image is placed before the prompt and spliced in through the LVLM's own image path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from lvlm.constants import IMAGE_TOKEN
from lvlm.data.images import ImageProcessor
from lvlm.errors import ConfigError
from lvlm.eval.models.hf import HFScoringModel, model_fingerprint
from lvlm.models.checkpoint import load_lvlm_checkpoint
from lvlm.models.lvlm import LVLM
from lvlm.templates import ChatTemplate, get_template

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
        return self.lvlm.embed(input_ids.to(self.device), pixels)


def scoring_model_from_checkpoint(path: Path, image_slot: str = "none") -> LVLMScoringModel:
    built = load_lvlm_checkpoint(path)
    return LVLMScoringModel(built.model, built.tokenizer, get_template(built.template), image_slot)
