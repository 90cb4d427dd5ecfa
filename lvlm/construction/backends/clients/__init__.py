"""Chat backends used to generate the FOVIT / NoFOVIT / FOIT / NoFOIT datasets.

Public surface: ``ChatResult`` and ``ChatClient`` (the interface the construction pipeline codes against),
``OpenAIChatClient`` and ``HFChatClient`` (the two backends), ``image_part`` (an image file as a chat content
part), and ``build_chat_client(name, **settings)`` which
looks the backend up in the ``CHAT_CLIENTS`` registry ("openai": any OpenAI-compatible endpoint, "hf": a
local transformers model). Backend modules are imported on first use so that importing this package stays
cheap (neither ``openai`` nor ``transformers`` is loaded until a client is built).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable

from lvlm.construction.backends.clients.base import ChatClient, ChatRequestError, ChatResult, UsageCounter
from lvlm.construction.backends.clients.images import image_part
from lvlm.errors import ConfigError
from lvlm.registry import Registry

CHAT_CLIENTS: Registry[Callable[..., ChatClient]] = Registry("chat client")


def _construct(cls: type, name: str, settings: dict[str, object]) -> ChatClient:
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(settings) - set(valid))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {', '.join(unknown)} for chat client '{name}'; "
            f"valid settings: {', '.join(valid)}"
        )
    return cls(**settings)


@CHAT_CLIENTS.register("openai")
def _build_openai(**settings: object) -> ChatClient:
    from lvlm.construction.backends.clients.openai_client import OpenAIChatClient

    return _construct(OpenAIChatClient, "openai", settings)


@CHAT_CLIENTS.register("hf")
def _build_hf(**settings: object) -> ChatClient:
    from lvlm.construction.backends.clients.hf_client import HFChatClient

    return _construct(HFChatClient, "hf", settings)


_LAZY_CLASSES = {
    "OpenAIChatClient": "lvlm.construction.backends.clients.openai_client",
    "HFChatClient": "lvlm.construction.backends.clients.hf_client",
}


def __getattr__(name: str) -> object:
    """Import the backend classes on first access (keeps ``openai`` and ``transformers`` unloaded)."""
    if name in _LAZY_CLASSES:
        return getattr(importlib.import_module(_LAZY_CLASSES[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_chat_client(name: str, **settings: object) -> ChatClient:
    """Build the backend registered under ``name``; unknown names or settings raise listing the valid ones."""
    return CHAT_CLIENTS.get(name)(**settings)


__all__ = [
    "CHAT_CLIENTS",
    "ChatClient",
    "ChatRequestError",
    "ChatResult",
    "HFChatClient",
    "OpenAIChatClient",
    "UsageCounter",
    "build_chat_client",
    "image_part",
]
