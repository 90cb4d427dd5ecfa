"""``ScoringModel`` adapter for lvlm training checkpoints.

``load_lvlm_checkpoint`` rebuilds the base model from the configuration stored in a trainable-only
checkpoint (same config and seed give the same frozen weights, verified by fingerprint), then loads the
trained weights. ``LVLMScoringModel`` wraps the LVLM for the text-only benchmark: prompts are wrapped in the
conversation template the model was trained with; with ``image_slot="blank"`` (the ablation) a uniform gray
image is placed before the prompt and spliced in through the LVLM's own image path.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytorch_lightning as pl
import torch

from lvlm.data.conversation import IMAGE_PLACEHOLDER, ChatTemplate, get_template
from lvlm.data.images import ImageProcessor
from lvlm.errors import ConfigError, LvlmError
from lvlm.eval.hf_model import HFScoringModel, model_fingerprint
from lvlm.models.lvlm import LVLM
from lvlm.models.presets import BuiltModel, build_model
from lvlm.training.checkpoint import check_frozen, frozen_fingerprint

IMAGE_SLOTS = ("none", "blank")


def load_lvlm_checkpoint(path: Path) -> BuiltModel:
    """Rebuild the LVLM a checkpoint was trained from and load its trainable weights."""
    if not path.is_file():
        raise LvlmError(f"{path}: checkpoint not found; fix: pass a .ckpt written by train.py")
    state = torch.load(path, map_location="cpu", weights_only=False)
    info = state.get("lvlm") or {}
    base = info.get("base") or {}
    if "model" not in base:
        raise LvlmError(
            f"{path}: not an lvlm checkpoint (no base model config); fix: use a train.py checkpoint"
        )
    pl.seed_everything(int(base.get("seed", 0)), verbose=False)
    built = build_model(base["model"])
    trained = {k.removeprefix("model."): v for k, v in state["state_dict"].items()}
    missing_trained = set(trained) - set(built.model.state_dict())
    if missing_trained:
        raise LvlmError(
            f"{path}: {len(missing_trained)} tensors do not fit the rebuilt model; fix: same lvlm version"
        )
    built.model.load_state_dict(trained, strict=False)
    check_frozen(info.get("frozen_fingerprint"), frozen_fingerprint(built.model, trained), str(path))
    built.template = str(base.get("template") or built.template)
    return built


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
        user = f"{IMAGE_PLACEHOLDER}\n{prompt}" if self.image_slot == "blank" else prompt
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
