"""The three construction generators behind one interface, and the backend registry.

SPEC §3 names three generators: caption(image) → caption; question_answer(caption, format instruction) →
(question, formatted answer); answer(caption, question) → unformatted answer. A backend implements all
three as a ``Generator``:

* ``synthetic`` (``generator_synthetic.SyntheticGenerator``): exact text from procedural scene facts,
  offline and deterministic, the default;
* ``openai`` / ``hf`` (``generator_llm.LLMGenerator``): prompt templates sent to a ``ChatClient``.

Generators return text; the pipeline judges it (empty, refusal, format compliance). An item-level problem
the generator itself detects (a corrupt image, an unparseable reply) is raised as ``SkipItem`` with a reason
that the cards count.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lvlm.data.scene import Scene
from lvlm.registry import Registry


@dataclass(frozen=True)
class ImageItem:
    """One input image: its id, absolute source path, name under ``<dataset>/images/``, scene facts."""

    id: str
    path: Path
    rel: str
    scene: Scene | None = None


@dataclass(frozen=True)
class QADraft:
    """A question with its formatted answer, and the raw reply it was parsed from."""

    question: str
    answer: str
    raw: str


@dataclass(frozen=True)
class Feedback:
    """Why the previous question-answer attempt was rejected; drives the regenerated request."""

    attempt: int  # 1-based number of the attempt being made now (2 = first regeneration)
    previous: QADraft | None
    reason: str


class SkipItem(Exception):
    """An item cannot be generated (corrupt image, unparseable reply); counted under ``reason``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


class Generator(Protocol):
    """A construction backend: the three SPEC §3 generators plus bookkeeping for the cards."""

    backend: str

    async def caption(self, item: ImageItem) -> str: ...

    async def question_answer(
        self, item: ImageItem, caption: str, instruction: Any, feedback: Feedback | None
    ) -> QADraft: ...

    async def answer(self, item: ImageItem, caption: str, question: str) -> str: ...

    def describe(self) -> dict[str, Any]:
        """Backend name, model ids, prompt templates and generation parameters (never secrets)."""
        ...

    def usage_summary(self) -> dict[str, Any]: ...

    async def aclose(self) -> None: ...


GeneratorFactory = Callable[[Any], Generator]
BACKENDS: Registry[GeneratorFactory] = Registry("construction backend")

_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|i am sorry|sorry, (but )?i|i can(no|')t|i cannot|i am unable|i'?m unable|"
    r"i am not able|i'?m not able|as an ai\b|unfortunately, i can)",
    re.IGNORECASE,
)


def is_refusal(text: str) -> bool:
    """True when a reply opens like a refusal ("I'm sorry, but I can't …")."""
    return bool(_REFUSAL.match(text.strip()))


def word_count(text: str) -> int:
    return len(text.split())


def check_backend(name: str) -> None:
    """Raise ``UnknownNameError`` (listing the valid backends) unless ``name`` is registered."""
    _register_builtin_backends()
    BACKENDS.get(name)


def make_generator(construction_cfg: Any) -> Generator:
    """Build the generator named by ``construction_cfg.backend`` (raises ``UnknownNameError`` on a miss)."""
    _register_builtin_backends()
    return BACKENDS.get(str(construction_cfg.backend))(construction_cfg)


def _register_builtin_backends() -> None:
    if "synthetic" in BACKENDS:
        return
    from lvlm.data.construction.generator_llm import make_hf_generator, make_openai_generator
    from lvlm.data.construction.generator_synthetic import SyntheticGenerator

    BACKENDS.add("synthetic", SyntheticGenerator.from_config)
    BACKENDS.add("openai", make_openai_generator)
    BACKENDS.add("hf", make_hf_generator)
