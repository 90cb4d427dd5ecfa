"""``ScoringModel`` adapter for any Hugging Face vision-language model (``model.kind=hf_vlm``).

``load_hf_vlm_scoring_model`` loads ``AutoModelForImageTextToText`` and ``AutoProcessor`` (LLaVA-1.5-hf,
LLaVA-NeXT and later VLMs whose forward takes ``inputs_embeds``). Prompts are wrapped in the processor's
chat template (one user turn with a text part, plus the generation prompt) unless ``model.template`` names
a project template. The benchmark is text-only: by default no image is given; with ``image_slot="blank"``
(the ablation) the user turn opens with an image part holding a uniform gray image (RGB 128, 128, 128),
which the processor preprocesses and expands into the model's image tokens, and whose features
(``get_image_features``) are spliced in at those positions, as the model's own forward does.
"""

from __future__ import annotations

import hashlib
import inspect
from pathlib import Path
from typing import Any

import torch

from lvlm.errors import ConfigError
from lvlm.eval.models.hf import HFScoringModel, model_fingerprint, resolve_device
from lvlm.eval.models.wrapping import (
    PROCESSOR_TEMPLATE,
    effective_system_prompt,
    keeps_template_system,
    resolve_template,
    system_prompt_override,
    wrapping_record,
)
from lvlm.models.llm import resolve_dtype
from lvlm.templates import ChatTemplate

IMAGE_SLOTS = ("none", "blank")
BLANK_RGB = (128, 128, 128)


def _image_token_id(model: torch.nn.Module, processor: Any) -> int:
    for source in (model.config, processor):
        for name in ("image_token_id", "image_token_index"):
            value = getattr(source, name, None)
            if isinstance(value, int):
                return value
    raise ConfigError(f"{type(model).__name__}: no image_token_id in its config or processor")


def _flat_features(output: Any) -> torch.Tensor:
    """``get_image_features`` output (tensor, list per image, or a model output) as ``[tokens, hidden]``."""
    if hasattr(output, "pooler_output") and output.pooler_output is not None:
        output = output.pooler_output
    if isinstance(output, (list, tuple)):
        return torch.cat([part.reshape(-1, part.shape[-1]) for part in output])
    return output.reshape(-1, output.shape[-1])


class HFVLMScoringModel(HFScoringModel):
    """A Hugging Face VLM + processor seen through the ``ScoringModel`` protocol."""

    def __init__(
        self,
        model: torch.nn.Module,
        processor: Any,
        *,
        image_slot: str = "none",
        system_prompt: str | None = None,
        template: ChatTemplate | None = None,
    ) -> None:
        if image_slot not in IMAGE_SLOTS:
            raise ConfigError(
                f"unknown image_slot '{image_slot}'; valid image_slot names: {', '.join(IMAGE_SLOTS)}"
            )
        tokenizer = processor.tokenizer
        self.processor, self.image_slot = processor, image_slot
        chat = getattr(processor, "chat_template", None)
        if template is None and not chat:
            raise ConfigError(
                f"{type(processor).__name__} has no chat template; fix: pass model.template=<name>"
            )
        digest = model_fingerprint(
            model, tokenizer, use_chat_template=template is None, system_prompt=system_prompt,
            template=template.name if template is not None else PROCESSOR_TEMPLATE,
        )  # fmt: skip
        fingerprint = hashlib.sha256(f"{digest}|{chat}|{image_slot}".encode()).hexdigest()
        super().__init__(
            model, tokenizer, use_chat_template=False, system_prompt=system_prompt, fingerprint=fingerprint
        )
        self.template = template
        self.system_prompt = template.system if template is not None else system_prompt
        self.eos_token_ids = self.eos_token_ids | self._text_config_eos(model)
        self.image_token_id = _image_token_id(model, processor)
        self.image_token = getattr(processor, "image_token", None) or tokenizer.convert_ids_to_tokens(
            self.image_token_id
        )
        self._image_inputs: dict[str, torch.Tensor] | None = None
        self._features: torch.Tensor | None = None

    @staticmethod
    def _text_config_eos(model: torch.nn.Module) -> frozenset[int]:
        value = getattr(getattr(model.config, "text_config", None), "eos_token_id", None)
        if isinstance(value, int):
            return frozenset({value})
        return frozenset(int(v) for v in value) if isinstance(value, (list, tuple)) else frozenset()

    @property
    def wrapping(self) -> dict[str, object]:
        if self.template is not None:
            name, system = self.template.name, self.template.system
        else:
            name = PROCESSOR_TEMPLATE
            system = self.system_prompt or effective_system_prompt(lambda sys: self._chat("P", sys))
        return wrapping_record(name, system, self.image_slot, self.format_prompt)

    def _chat(self, prompt: str, system_prompt: str | None) -> str:
        content: list[dict[str, str]] = [{"type": "text", "text": prompt}]
        if self.image_slot == "blank":
            content.insert(0, {"type": "image"})
        messages: list[dict[str, Any]] = [{"role": "user", "content": content}]
        if system_prompt:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system_prompt}]})
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def format_prompt(self, prompt: str) -> str:
        if self.template is not None:
            user = f"{self.image_token}\n{prompt}" if self.image_slot == "blank" else prompt
            return self.template.generation_prompt(user)
        return self._chat(prompt, self.system_prompt)

    def _blank_image(self) -> Any:
        from PIL import Image

        vision = getattr(self.model.config, "vision_config", None)
        side = int(getattr(vision, "image_size", 0) or 224)
        return Image.new("RGB", (side, side), BLANK_RGB)

    def encode(self, text: str) -> list[int]:
        bos = getattr(self.tokenizer, "bos_token", None)
        add_special = not (bos and text.startswith(bos))
        if self.image_token not in text:
            return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])
        inputs = self.processor(
            text=[text], images=[self._blank_image()], add_special_tokens=add_special, return_tensors="pt"
        )
        if self._image_inputs is None:
            self._image_inputs = {k: v for k, v in inputs.items() if k not in ("input_ids", "attention_mask")}
        return inputs["input_ids"][0].tolist()

    @torch.inference_mode()
    def _blank_features(self) -> torch.Tensor:
        """Projected features of one blank image, computed once (the model is frozen)."""
        if self._features is None:
            if self._image_inputs is None:
                self.encode(self.format_prompt("") if self.image_slot == "blank" else f"{self.image_token}")
            get_features = self.model.get_image_features
            accepted = inspect.signature(get_features).parameters
            takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in accepted.values())
            inputs = {
                key: value.to(self.device, self.model.dtype if value.is_floating_point() else value.dtype)
                for key, value in (self._image_inputs or {}).items()
                if key in accepted or takes_kwargs
            }
            self._features = _flat_features(get_features(**inputs))
        return self._features

    @torch.inference_mode()
    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        input_ids = input_ids.to(self.device)
        mask = input_ids == self.image_token_id
        embeds = self.model.get_input_embeddings()(input_ids)
        slots = int(mask.sum())
        if not slots:
            return embeds
        features = self._blank_features().to(embeds.dtype)
        if slots % features.shape[0]:
            n = features.shape[0]
            raise ValueError(f"{slots} image-token positions are not a multiple of {n} image features")
        repeated = features.repeat(slots // features.shape[0], 1)
        return embeds.masked_scatter(mask.unsqueeze(-1), repeated)


def load_hf_vlm_scoring_model(
    name_or_path: str,
    dtype: str = "float32",
    device: str = "cpu",
    *,
    image_slot: str = "none",
    system_prompt: str | None = None,
    template: str | None = None,
) -> HFVLMScoringModel:
    """Load ``AutoModelForImageTextToText`` + ``AutoProcessor`` from ``name_or_path`` as a scoring model."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    torch_dtype, torch_device = resolve_dtype(dtype), resolve_device(device)
    chat_template = resolve_template("", template, system_prompt) if template else None
    override = system_prompt_override(system_prompt)
    system_text = None if keeps_template_system(override) else override
    try:
        processor = AutoProcessor.from_pretrained(name_or_path)
        model = AutoModelForImageTextToText.from_pretrained(name_or_path, dtype=torch_dtype)
    except (OSError, ValueError, KeyError) as error:
        where = "local directory" if Path(name_or_path).exists() else "hub id (not in the local cache?)"
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise ConfigError(
            f"{name_or_path}: cannot load a vision-language model/processor from this {where}: {first_line}; "
            "fix: pass a local directory holding config.json, weights and processor files (HF_HUB_OFFLINE=1 "
            "forbids downloads)"
        ) from None
    return HFVLMScoringModel(
        model.to(torch_device).eval(), processor, image_slot=image_slot, system_prompt=system_text,
        template=chat_template,
    )  # fmt: skip
