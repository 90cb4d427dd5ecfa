"""Shared value types of the verbalizer-manipulation benchmark.

These small frozen dataclasses and the ``ScoringModel`` protocol are the contract between the task
definitions and data sources (``tasks``, ``sources``), prompt rendering (``tasks.prompts``,
``tasks.verbalizers``), the scorers (``scoring``), the model adapters (``models``), and the metrics and
result writers (``results``). Keep them stable: every part of ``lvlm.eval`` speaks in these terms.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

import torch

LabelSystem = Literal["natural", "neutral", "unnatural"]
LABEL_SYSTEMS: tuple[LabelSystem, ...] = ("natural", "neutral", "unnatural")
INVALID = -1  # a prediction that matches neither verbalizer word


@dataclass(frozen=True)
class Example:
    """One evaluation example of a binary task; ``label`` 0 means label_0 (the first condition)."""

    task: str
    uid: str
    inputs: dict[str, str]
    label: int


@dataclass(frozen=True)
class VerbalizerSet:
    """A pair of label words for (label_0, label_1) of one task, within one label system."""

    name: str
    system: LabelSystem
    words: tuple[str, str]


@dataclass(frozen=True)
class PromptItem:
    """A rendered, not yet chat-wrapped prompt for one (example, verbalizer set)."""

    task: str
    uid: str
    set_name: str
    system: LabelSystem
    text: str
    words: tuple[str, str]
    gold: int


@dataclass(frozen=True)
class Prediction:
    """What a scorer returns for one ``PromptItem``.

    ``strict``/``lenient`` are 0, 1 or ``INVALID``; ``raw`` is the generated text (empty for the
    log-likelihood scorer); ``loglikelihoods`` holds the summed log-probability of each verbalizer word
    (log-likelihood scorer only).
    """

    strict: int
    lenient: int
    raw: str = ""
    loglikelihoods: tuple[float, float] | None = None
    extra: dict[str, object] = field(default_factory=dict)


class ScoringModel(Protocol):
    """What a scorer needs from a model: tokenization, chat wrapping and a cached forward pass.

    ``encode`` turns a chat-wrapped string into token ids (special tokens and any image placeholder
    expansion included). ``embed`` maps ids to input embeddings (an LVLM splices image features here).
    ``forward`` runs the decoder on embeddings and returns ``(logits, past_key_values)``.
    """

    fingerprint: str
    eos_token_ids: frozenset[int]
    pad_token_id: int

    def format_prompt(self, prompt: str) -> str: ...

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor: ...

    def forward(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        position_ids: torch.Tensor,
        past_key_values: object | None = None,
    ) -> tuple[torch.Tensor, object]: ...
