"""Procedural visual-instruction data for the offline default (``data=synthetic``).

Scenes of one to three coloured shapes on a 3×3 grid are drawn from a seed, rendered to PNG and described
by exact facts (``lvlm.data.scene``). Each scene yields one LLaVA-format record whose questions are
answerable only from the image (shape at a position, colour of a shape, object count, position of an
object, a short caption), so a model that learns to use the image shows it in its loss. Everything is
deterministic by seed and generated on first use into a cache directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

from lvlm.data.scene import (
    BACKGROUNDS,
    COLORS,
    COLUMNS,
    ROWS,
    SHAPES,
    SIZES,
    Scene,
    SceneObject,
    write_scenes,
)

FORMAT_VERSION = 1


def draw_scene(rng: random.Random, scene_id: str) -> Scene:
    cells = [(row, col) for row in ROWS for col in COLUMNS]
    count = rng.randint(1, 3)
    chosen = rng.sample(cells, count)
    objects = tuple(
        SceneObject(rng.choice(SHAPES), rng.choice(sorted(COLORS)), rng.choice(SIZES), row, col)
        for row, col in chosen
    )
    return Scene(scene_id, f"images/{scene_id}.png", rng.choice(sorted(BACKGROUNDS)), objects)


def render_scene(scene: Scene, size: int) -> Image.Image:
    image = Image.new("RGB", (size, size), BACKGROUNDS[scene.background])
    draw = ImageDraw.Draw(image)
    cell = size / 3
    for obj in scene.objects:
        cx = (COLUMNS.index(obj.column) + 0.5) * cell
        cy = (ROWS.index(obj.row) + 0.5) * cell
        half = cell * (0.42 if obj.size == "large" else 0.22)
        box = (cx - half, cy - half, cx + half, cy + half)
        fill = COLORS[obj.color]
        if obj.shape == "circle":
            draw.ellipse(box, fill=fill)
        elif obj.shape == "square":
            draw.rectangle(box, fill=fill)
        else:
            draw.polygon([(cx, cy - half), (cx - half, cy + half), (cx + half, cy + half)], fill=fill)
    return image


def describe_object(obj: SceneObject) -> str:
    return f"a {obj.size} {obj.color} {obj.shape}"


def caption(scene: Scene) -> str:
    parts = [f"{describe_object(o)} in the {o.position}" for o in scene.objects]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"The image shows {listed} on a {scene.background} background."


def question_answers(scene: Scene) -> list[tuple[str, str]]:
    """Every question this scene can answer unambiguously, with its exact answer."""
    n = len(scene.objects)
    qa = [
        ("How many objects are there in the image?", f"There {'is' if n == 1 else 'are'} {_number(n)}."),
        ("Describe the image briefly.", caption(scene)),
        ("What color is the background?", f"The background is {scene.background}."),
    ]
    for obj in scene.objects:
        qa.append((f"What is in the {obj.position}?", f"There is {describe_object(obj)}."))
        qa.append((f"Where is the {obj.color} {obj.shape}?", f"It is in the {obj.position}."))
        if sum(o.shape == obj.shape for o in scene.objects) == 1:
            qa.append((f"What color is the {obj.shape}?", f"The {obj.shape} is {obj.color}."))
    return qa


def _number(n: int) -> str:
    words = ["no objects", "one object", "two objects", "three objects"]
    return words[n] if n < len(words) else f"{n} objects"


def llava_record(scene: Scene, rng: random.Random, turns: int) -> dict:
    picked = rng.sample(question_answers(scene), k=min(turns, len(question_answers(scene))))
    conversations = []
    for index, (question, answer) in enumerate(picked):
        value = f"<image>\n{question}" if index == 0 else question
        conversations += [{"from": "human", "value": value}, {"from": "gpt", "value": answer}]
    return {"id": scene.id, "image": scene.image, "conversations": conversations}


def dataset_key(num_scenes: int, seed: int, image_size: int, max_turns: int) -> str:
    text = json.dumps([FORMAT_VERSION, num_scenes, seed, image_size, max_turns])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def generate(
    root: Path, num_scenes: int, seed: int, image_size: int, max_turns: int, val_fraction: float
) -> None:
    """Write ``images/``, ``scenes.jsonl``, ``train.json`` and ``val.json`` into ``root``."""
    rng = random.Random(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    scenes = [draw_scene(rng, f"scene_{index:05d}") for index in range(num_scenes)]
    for scene in scenes:
        render_scene(scene, image_size).save(root / scene.image)
    write_scenes(root / "scenes.jsonl", scenes)
    records = [llava_record(scene, rng, rng.randint(1, max_turns)) for scene in scenes]
    num_val = max(1, round(num_scenes * val_fraction)) if val_fraction > 0 else 0
    (root / "train.json").write_text(json.dumps(records[num_val:], indent=1), encoding="utf-8")
    (root / "val.json").write_text(json.dumps(records[:num_val], indent=1), encoding="utf-8")


def ensure_synthetic_dataset(
    root: Path,
    num_scenes: int = 512,
    seed: int = 0,
    image_size: int = 64,
    max_turns: int = 2,
    val_fraction: float = 0.125,
) -> Path:
    """Return ``root/<key>`` holding the dataset, generating it atomically on first use."""
    target = Path(root) / f"synthetic-{dataset_key(num_scenes, seed, image_size, max_turns)}"
    if (target / "train.json").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target.parent))
    try:
        generate(staging, num_scenes, seed, image_size, max_turns, val_fraction)
        try:
            os.replace(staging, target)
        except OSError:  # another process finished first
            if not (target / "train.json").exists():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
