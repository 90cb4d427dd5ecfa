"""The offline construction backend: exact captions, questions and answers from scene facts.

Every synthetic image has a ``Scene`` (background, objects with shape, colour, size and grid cell), so the
three generators need no model: the caption lists every object, questions ask what the image shows (how
many objects, of which colour or shape, which colour or shape an object has, where it is, the background),
the unformatted answer states the fact in prose, and the formatted answer is built by
``formatters.apply_format`` from the same fact sentences. Choices are seeded by the build seed and the
item id (and the attempt number for regenerations), so a build is reproducible and resumable.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from lvlm.data.construction.clients.images import load_rgb_image
from lvlm.data.construction.generators import Feedback, ImageItem, QADraft, SkipItem
from lvlm.data.scene import Scene, SceneObject
from lvlm.errors import DataError

QUESTION_KINDS = (
    "count_all",
    "count_color",
    "count_shape",
    "color_of",
    "position_of",
    "shape_of",
    "background",
)


def _where(obj: SceneObject) -> str:
    return "in the center" if obj.position == "center" else f"at the {obj.position}"


def _noun(obj: SceneObject) -> str:
    return f"{obj.size} {obj.color} {obj.shape}"


def _count_phrase(count: int, noun: str) -> str:
    if count == 0:
        return f"no {noun}s"
    return f"one {noun}" if count == 1 else f"{count} {noun}s"


def _unique(scene: Scene, obj: SceneObject, key: Callable[[SceneObject], tuple]) -> bool:
    return sum(1 for other in scene.objects if key(other) == key(obj)) == 1


def describe_scene(scene: Scene) -> str:
    """The exact caption: background and every object with its size, colour, shape and place."""
    parts = [f"a {_noun(obj)} {_where(obj)}" for obj in scene.objects]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    count = _count_phrase(len(scene.objects), "shape")
    return f"A synthetic picture with a {scene.background} background showing {count}: {listed}."


def fact_sentences(scene: Scene) -> list[str]:
    """One plain sentence per scene fact, used as supporting content for formatted answers."""
    facts = [f"There is a {_noun(obj)} {_where(obj)}." for obj in scene.objects]
    facts.append(f"The background of the picture is {scene.background}.")
    facts.append(f"In total the picture shows {_count_phrase(len(scene.objects), 'shape')}.")
    return facts


def _count_question(scene: Scene, kind: str, rng: random.Random) -> tuple[str, str, list[str]]:
    if kind == "count_all":
        support = [f"There is a {_noun(obj)} {_where(obj)}." for obj in scene.objects]
        count = _count_phrase(len(scene.objects), "shape")
        return "How many shapes are in the image?", f"I can see {count} in the image.", support
    attr = "color" if kind == "count_color" else "shape"
    value = getattr(rng.choice(scene.objects), attr)
    matches = [obj for obj in scene.objects if getattr(obj, attr) == value]
    noun = f"{value} shape" if attr == "color" else value
    question = f"How many {noun}s can you see in the image?"
    answer = f"I can see {_count_phrase(len(matches), noun)} in the image."
    support = [f"There is a {_noun(obj)} {_where(obj)}." for obj in matches]
    return question, answer, support


def _object_question(scene: Scene, kind: str, obj: SceneObject) -> tuple[str, str, list[str]] | None:
    """A question about one object, referring to it by attributes other than the one asked about."""
    if kind == "color_of":
        if _unique(scene, obj, lambda o: (o.shape, o.row, o.column)):
            ref = f"{obj.shape} {_where(obj)}"
            return f"What colour is the {ref}?", f"The {ref} is {obj.color}.", []
    elif kind == "position_of":
        if _unique(scene, obj, lambda o: (o.size, o.color, o.shape)):
            ref = _noun(obj)
            return f"Where is the {ref} in the image?", f"The {ref} is {_where(obj)} of the image.", []
    elif kind == "shape_of" and _unique(scene, obj, lambda o: (o.color, o.row, o.column)):
        ref = f"{obj.color} object {_where(obj)}"
        return f"What shape is the {ref}?", f"The {ref} is a {obj.shape}.", []
    return None


def make_question(scene: Scene, rng: random.Random) -> tuple[str, str, list[str]]:
    """Pick an answerable question: (question, direct answer sentence, relevant support sentences)."""
    if not scene.objects:
        return ("What colour is the background?", f"The background is {scene.background}.", [])
    kinds = list(QUESTION_KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        if kind == "background":
            return (
                "What colour is the background of the image?",
                f"The background is {scene.background}.",
                [],
            )
        if kind.startswith("count"):
            return _count_question(scene, kind, rng)
        obj = rng.choice(scene.objects)
        made = _object_question(scene, kind, obj)
        if made is not None:
            return made
    return _count_question(scene, "count_all", rng)


class SyntheticGenerator:
    """Backend ``synthetic``: deterministic text from ``ImageItem.scene``, answers via ``apply_format``."""

    backend = "synthetic"
    model = "scene-facts-v1"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.calls: Counter[str] = Counter()

    @classmethod
    def from_config(cls, cfg: Any) -> SyntheticGenerator:
        return cls(seed=int(cfg.get("seed", 0)))

    def _rng(self, item: ImageItem, purpose: str) -> random.Random:
        return random.Random(f"{self.seed}:{item.id}:{purpose}")

    @staticmethod
    def _scene(item: ImageItem) -> Scene:
        if item.scene is None:
            raise SkipItem("no_scene_facts", f"{item.path} has no entry in scenes.jsonl")
        return item.scene

    async def caption(self, item: ImageItem) -> str:
        self.calls["caption"] += 1
        try:
            load_rgb_image(item.path)  # the facts are exact, but the image itself must be usable
        except DataError as exc:
            raise SkipItem("corrupt_image", str(exc)) from exc
        return describe_scene(self._scene(item))

    async def question_answer(
        self, item: ImageItem, caption: str, instruction: Any, feedback: Feedback | None
    ) -> QADraft:
        from lvlm.data.construction.formatters import apply_format

        self.calls["question_answer"] += 1
        scene = self._scene(item)
        question, direct, support = make_question(scene, self._rng(item, "question"))
        sentences = [direct, *support, *[s for s in fact_sentences(scene) if s not in support]]
        attempt = 1 if feedback is None else feedback.attempt
        answer = apply_format(instruction, sentences, self._rng(item, f"format:{attempt}"), request=question)
        return QADraft(question, answer, raw=answer)

    async def answer(self, item: ImageItem, caption: str, question: str) -> str:
        self.calls["answer"] += 1
        scene = self._scene(item)
        asked, direct, support = make_question(scene, self._rng(item, "question"))
        if asked != question:
            raise SkipItem("question_mismatch", f"stored question {question!r} is not this scene's question")
        return " ".join([direct, *support[:3]])

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "models": {"caption": self.model, "question_answer": self.model, "answer": self.model},
            "prompts": {
                "caption": describe_scene.__doc__ or "",
                "question_kinds": ", ".join(QUESTION_KINDS),
                "formatted_answer": "formatters.apply_format(instruction, fact sentences, seeded rng)",
            },
            "params": {"seed": self.seed},
        }

    def usage_summary(self) -> dict[str, Any]:
        calls = sum(self.calls.values())
        return {"requests": calls, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}

    async def aclose(self) -> None:
        return None
