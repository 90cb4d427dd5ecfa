"""The offline construction backend ``synthetic``: exact captions, questions and answers from scene facts.

Every synthetic image has a ``Scene`` (background, objects with shape, colour, size and grid cell), so the
three generators need no model: the caption lists every object, questions ask what the image shows (how
many objects, of which colour or shape, which colour or shape an object has, where it is, the background),
the unformatted answer states the fact in prose, and the formatted answer is built by
``catalogue.formatters.apply_format`` from the same fact sentences. Choices are seeded by the build seed
and the item id (and the attempt number for regenerations), so a build is reproducible and resumable. The
backend registers itself here, with the procedural scenes of ``lvlm.data.synthetic`` as its default inputs
(``generate_scenes``) and scene facts required for every input image.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lvlm.construction.backends.base import Feedback, ImageItem, QADraft, SkipItem, register_backend
from lvlm.construction.backends.clients.images import load_rgb_image
from lvlm.data.scene import Scene, SceneObject
from lvlm.errors import DataError
from lvlm.registry import Registry

QUESTION_KINDS = (  # the order the seeded shuffle starts from (and the cards list); keep it stable
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


Question = tuple[str, str, list[str]]  # (question, direct answer sentence, relevant support sentences)
QuestionMaker = Callable[[Scene, random.Random], "Question | None"]
QUESTIONS: Registry[QuestionMaker] = Registry("synthetic question kind")


def _support(objects: list[SceneObject]) -> list[str]:
    return [f"There is a {_noun(obj)} {_where(obj)}." for obj in objects]


@QUESTIONS.register("count_all")
def _count_all(scene: Scene, rng: random.Random) -> Question:
    count = _count_phrase(len(scene.objects), "shape")
    return "How many shapes are in the image?", f"I can see {count} in the image.", _support(scene.objects)


def _count_by(attr: str) -> QuestionMaker:
    """How many objects share the colour (or shape) of a randomly chosen object."""

    def make(scene: Scene, rng: random.Random) -> Question:
        value = getattr(rng.choice(scene.objects), attr)
        matches = [obj for obj in scene.objects if getattr(obj, attr) == value]
        noun = f"{value} shape" if attr == "color" else value
        question = f"How many {noun}s can you see in the image?"
        answer = f"I can see {_count_phrase(len(matches), noun)} in the image."
        return question, answer, _support(matches)

    return make


QUESTIONS.add("count_color", _count_by("color"))
QUESTIONS.add("count_shape", _count_by("shape"))


def _about_one_object(
    key: Callable[[SceneObject], tuple], ask: Callable[[SceneObject], tuple[str, str]]
) -> QuestionMaker:
    """A question about a randomly chosen object, referring to it by the attributes in ``key`` (attributes
    other than the one asked about); ``None`` when those attributes do not single it out."""

    def make(scene: Scene, rng: random.Random) -> Question | None:
        obj = rng.choice(scene.objects)
        if not _unique(scene, obj, key):
            return None
        question, answer = ask(obj)
        return question, answer, []

    return make


def _ask_color(obj: SceneObject) -> tuple[str, str]:
    ref = f"{obj.shape} {_where(obj)}"
    return f"What colour is the {ref}?", f"The {ref} is {obj.color}."


def _ask_position(obj: SceneObject) -> tuple[str, str]:
    ref = _noun(obj)
    return f"Where is the {ref} in the image?", f"The {ref} is {_where(obj)} of the image."


def _ask_shape(obj: SceneObject) -> tuple[str, str]:
    ref = f"{obj.color} object {_where(obj)}"
    return f"What shape is the {ref}?", f"The {ref} is a {obj.shape}."


QUESTIONS.add("color_of", _about_one_object(lambda o: (o.shape, o.row, o.column), _ask_color))
QUESTIONS.add("position_of", _about_one_object(lambda o: (o.size, o.color, o.shape), _ask_position))
QUESTIONS.add("shape_of", _about_one_object(lambda o: (o.color, o.row, o.column), _ask_shape))


@QUESTIONS.register("background")
def _background(scene: Scene, rng: random.Random) -> Question:
    return "What colour is the background of the image?", f"The background is {scene.background}.", []


def make_question(scene: Scene, rng: random.Random) -> Question:
    """Pick an answerable question: kinds are tried in a seeded order until one fits the scene."""
    if not scene.objects:
        return ("What colour is the background?", f"The background is {scene.background}.", [])
    kinds = list(QUESTION_KINDS)
    rng.shuffle(kinds)
    for kind in kinds:
        made = QUESTIONS.get(kind)(scene, rng)
        if made is not None:
            return made
    return _count_all(scene, rng)


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
        from lvlm.construction.catalogue.formatters import apply_format

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


def generate_scenes(construction_cfg: Any) -> Path:
    """The default inputs: procedural scenes (``lvlm.data.synthetic``) generated into ``scenes_root``."""
    from lvlm.data.synthetic import ensure_synthetic_dataset

    return ensure_synthetic_dataset(
        Path(str(construction_cfg.scenes_root)),
        num_scenes=int(construction_cfg.num_scenes),
        seed=int(construction_cfg.get("scenes_seed", 0)),
        image_size=int(construction_cfg.get("image_size", 64)),
    )


@register_backend(
    "synthetic",
    default_images=generate_scenes,
    needs_scene_facts=True,
    fixed_provenance="procedural images and text generated by lvlm from scene facts; no third-party content.",
)
def make_synthetic_generator(construction_cfg: Any) -> SyntheticGenerator:
    """Backend ``synthetic`` (``conf/construction/synthetic.yaml``)."""
    return SyntheticGenerator.from_config(construction_cfg)
