"""Vision towers behind one interface: open_clip and Hugging Face CLIP.

A ``VisionTower`` maps normalised pixels ``[B, 3, H, W]`` to patch features ``[B, N, D]`` taken from a
chosen encoder layer (LLaVA's default: the second-to-last) without the CLS token. Two implementations:
``OpenClipTower`` builds any open_clip model by name (the project registers its own tiny configs from
``open_clip_configs/``; ``pretrained=None`` gives random weights offline) and ``HFClipTower`` wraps
``transformers.CLIPVisionModel`` built from a config or loaded from a path/hub id. ``VISION_TOWERS``
maps the ``model.vision.kind`` names to the classes; ``build_vision`` builds one from its config.

Activation fidelity: OpenAI's CLIP weights were trained with QuickGELU. open_clip's plain ``ViT-L-14``
uses ``nn.GELU`` and only warns when loaded with ``pretrained=openai``; here that mismatch is a
``ConfigError`` (``check_open_clip_activation``) — use ``ViT-L-14-quickgelu``. ``HFClipTower`` checks the
loaded config's ``hidden_act`` against the preset's ``hidden_act`` the same way. See docs/model.md.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from lvlm.errors import ConfigError
from lvlm.registry import Registry

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
_CONFIG_DIR = Path(__file__).parent / "open_clip_configs"


class VisionTower(nn.Module):
    """Common attributes: ``image_size``, ``hidden_size``, ``num_patches``, ``mean``, ``std``."""

    image_size: int
    hidden_size: int
    num_patches: int
    mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    std: tuple[float, float, float] = OPENAI_CLIP_STD

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError


def register_open_clip_configs() -> None:
    """Make the project's tiny architectures known to open_clip (idempotent)."""
    import open_clip

    if "lvlm-tiny-vit" not in open_clip.list_models():
        open_clip.add_model_config(_CONFIG_DIR)


def check_open_clip_activation(model_name: str, pretrained: str | None) -> None:
    """Raise ``ConfigError`` when a pretrained tag's weights expect QuickGELU and the model lacks it.

    open_clip only warns about this (and builds a silently wrong tower); reads configs only, no download.
    """
    if not pretrained:
        return
    from open_clip.factory import get_model_config
    from open_clip.pretrained import get_pretrained_cfg

    register_open_clip_configs()
    tag = get_pretrained_cfg(model_name, pretrained) or {}
    model = get_model_config(model_name) or {}
    wants, has = bool(tag.get("quick_gelu", False)), bool(model.get("quick_gelu", False))
    if tag and wants != has:
        fix = f"use model_name={model_name}-quickgelu" if wants else "use the model name without -quickgelu"
        raise ConfigError(
            f"open_clip model '{model_name}' (quick_gelu={has}) does not match the activation of its "
            f"pretrained weights '{pretrained}' (quick_gelu={wants}); fix: {fix} (docs/model.md)"
        )


VISION_TOWERS: Registry[type[VisionTower]] = Registry("vision tower kind")


@VISION_TOWERS.register("open_clip")
class OpenClipTower(VisionTower):
    """The visual half of an open_clip CLIP model."""

    def __init__(self, model_name: str, pretrained: str | None = None, select_layer: int = -2) -> None:
        super().__init__()
        import open_clip

        register_open_clip_configs()
        check_open_clip_activation(model_name, pretrained)
        previous = logging.root.manager.disable
        if pretrained is None:  # random init is intended here; open_clip would warn on the root logger
            logging.disable(logging.WARNING)
        try:
            clip = open_clip.create_model(model_name, pretrained=pretrained)
        finally:
            logging.disable(previous)
        self.visual = clip.visual
        del clip
        self.select_layer = select_layer
        size = self.visual.image_size
        self.image_size = int(size[0] if isinstance(size, (tuple, list)) else size)
        patch = self.visual.patch_size
        patch = int(patch[0] if isinstance(patch, (tuple, list)) else patch)
        self.num_patches = (self.image_size // patch) ** 2
        self.hidden_size = int(self.visual.transformer.width)
        self.num_layers = len(self.visual.transformer.resblocks)
        self.mean = tuple(getattr(self.visual, "image_mean", None) or OPENAI_CLIP_MEAN)
        self.std = tuple(getattr(self.visual, "image_std", None) or OPENAI_CLIP_STD)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        layer = self.select_layer % self.num_layers
        out = self.visual.forward_intermediates(
            pixel_values, indices=[layer], stop_early=True, intermediates_only=True, output_fmt="NLC"
        )
        return out["image_intermediates"][0]


@VISION_TOWERS.register("hf_clip")
class HFClipTower(VisionTower):
    """``transformers.CLIPVisionModel``; patch features of ``hidden_states[select_layer]`` minus CLS.

    ``hidden_act`` (optional) is the activation the weights were trained with: a loaded model whose config
    says otherwise is a ``ConfigError``; a model built from ``config`` uses it.
    """

    def __init__(
        self,
        name_or_path: str | None = None,
        config: dict | None = None,
        select_layer: int = -2,
        hidden_act: str | None = None,
    ) -> None:
        super().__init__()
        from transformers import CLIPVisionConfig, CLIPVisionModel

        if name_or_path is not None:
            self.model = CLIPVisionModel.from_pretrained(name_or_path)
        else:
            options = dict(config or {})
            if hidden_act is not None:
                options["hidden_act"] = hidden_act
            self.model = CLIPVisionModel(CLIPVisionConfig(**options))
        cfg = self.model.config
        if hidden_act is not None and cfg.hidden_act != hidden_act:
            raise ConfigError(
                f"vision tower {name_or_path or 'config'} uses hidden_act={cfg.hidden_act!r} but the preset "
                f"expects {hidden_act!r}; fix: load weights trained with {hidden_act} or change "
                "model.vision.hidden_act (docs/model.md)"
            )
        self.select_layer = select_layer
        self.image_size = int(cfg.image_size)
        self.hidden_size = int(cfg.hidden_size)
        self.num_patches = (cfg.image_size // cfg.patch_size) ** 2

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values, output_hidden_states=True)
        return out.hidden_states[self.select_layer][:, 1:]


def build_vision(cfg: dict) -> VisionTower:
    """The tower named by ``cfg["kind"]``, built from the rest of ``cfg``."""
    tower = VISION_TOWERS.get(str(cfg.get("kind")))
    options = {key: value for key, value in cfg.items() if key != "kind"}
    return tower(**options)
