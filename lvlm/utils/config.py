"""One way to turn configuration objects into plain Python data.

Hydra hands the code ``DictConfig`` objects; functions below the CLI layer work on plain dicts and lists so
they can be called from tests, notebooks and other programs without OmegaConf. ``to_plain`` is the single
conversion point: it resolves interpolations and copies mappings, and passes ``None`` through as ``{}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf


def to_plain(cfg: DictConfig | ListConfig | Mapping[str, Any] | None) -> dict[str, Any]:
    """A resolved, plain ``dict`` copy of ``cfg`` (``{}`` for ``None``)."""
    if cfg is None:
        return {}
    if isinstance(cfg, (DictConfig, ListConfig)):
        plain = OmegaConf.to_container(cfg, resolve=True)
        if not isinstance(plain, dict):
            raise TypeError(f"expected a mapping config, got {type(plain).__name__}")
        return plain  # type: ignore[return-value]
    return {key: _plain_value(value) for key, value in dict(cfg).items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=True)
    return value
