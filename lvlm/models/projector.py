"""Projectors from vision features to the language model's embedding space.

``linear`` is LLaVA-v1's single linear layer (the paper's model); ``mlp2x_gelu`` is LLaVA-1.5's two-layer
MLP, offered for ablations. See docs/model.md ("Projector").
"""

from __future__ import annotations

from torch import nn

from lvlm.registry import Registry

PROJECTORS: Registry[type[nn.Module]] = Registry("projector")


@PROJECTORS.register("linear")
class LinearProjector(nn.Linear):
    def __init__(self, vision_dim: int, text_dim: int) -> None:
        super().__init__(vision_dim, text_dim)


@PROJECTORS.register("mlp2x_gelu")
class MLPProjector(nn.Sequential):
    def __init__(self, vision_dim: int, text_dim: int) -> None:
        super().__init__(nn.Linear(vision_dim, text_dim), nn.GELU(), nn.Linear(text_dim, text_dim))


def build_projector(kind: str, vision_dim: int, text_dim: int) -> nn.Module:
    return PROJECTORS.get(kind)(vision_dim, text_dim)
