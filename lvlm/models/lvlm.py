"""The LLaVA-style vision-language model as a plain ``nn.Module``.

``LVLM`` encodes images with a (frozen) vision tower, projects patch features into the LLM's embedding
space and splices them into the token embeddings wherever ``input_ids`` holds the image token (one
``<image>`` placeholder is expanded to ``num_image_tokens`` ids at tokenization time). The splice is done by
mask, so text-only samples and image samples share a batch: ``pixel_values`` holds only the images present,
in the order their placeholders appear.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from lvlm.models.vision import VisionTower


class LVLM(nn.Module):
    def __init__(
        self, vision: VisionTower, projector: nn.Module, llm: PreTrainedModel, image_token_id: int
    ) -> None:
        super().__init__()
        self.vision = vision
        self.projector = projector
        self.llm = llm
        self.image_token_id = image_token_id

    @property
    def num_image_tokens(self) -> int:
        return self.vision.num_patches

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """Projected patch features ``[num_images, num_patches, hidden]``."""
        grad = any(p.requires_grad for p in self.vision.parameters())
        with torch.set_grad_enabled(grad and torch.is_grad_enabled()):
            features = self.vision(pixel_values.to(self._vision_dtype()))
        return self.projector(features.to(self._projector_dtype()))

    def embed(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        """Token embeddings with image features written at the image-token positions."""
        mask = input_ids == self.image_token_id
        embeds = self.llm.get_input_embeddings()(input_ids.masked_fill(mask, 0))
        num_slots = int(mask.sum())
        num_images = 0 if pixel_values is None else int(pixel_values.shape[0])
        if num_slots != num_images * self.num_image_tokens:
            raise ValueError(
                f"batch has {num_slots} image-token positions but {num_images} images × "
                f"{self.num_image_tokens} tokens; every <image> placeholder needs exactly one image"
            )
        if num_images == 0:
            return embeds
        features = self.encode_images(pixel_values).to(embeds.dtype)
        return embeds.masked_scatter(mask.unsqueeze(-1), features.reshape(-1, features.shape[-1]))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        pixel_values: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        **kwargs: object,
    ) -> CausalLMOutputWithPast:
        inputs_embeds = self.embed(input_ids, pixel_values)
        return self.llm(
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            labels=labels,
            **kwargs,
        )

    def _vision_dtype(self) -> torch.dtype:
        return next(self.vision.parameters()).dtype

    def _projector_dtype(self) -> torch.dtype:
        return next(self.projector.parameters()).dtype
