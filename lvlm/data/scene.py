"""Scene facts of the procedural synthetic images.

A ``Scene`` is the ground truth behind one synthetic PNG: a background colour and a few objects, each with
a shape, colour, size and a position on a 3×3 grid. ``lvlm.data.synthetic`` draws scenes and renders them;
the synthetic construction backend reads the same facts to write exact captions and answers. Scenes are
stored one JSON object per line in ``scenes.jsonl`` beside the ``images/`` folder.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from lvlm.errors import DataError

SHAPES = ("circle", "square", "triangle")
COLORS = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
    "purple": (140, 60, 170),
    "orange": (245, 130, 30),
}
BACKGROUNDS = {"white": (250, 250, 250), "gray": (150, 150, 150), "black": (15, 15, 15)}
SIZES = ("small", "large")
ROWS = ("top", "middle", "bottom")
COLUMNS = ("left", "center", "right")


@dataclass(frozen=True)
class SceneObject:
    shape: str
    color: str
    size: str
    row: str
    column: str

    @property
    def position(self) -> str:
        """Human phrase for the grid cell, e.g. ``"top left"`` or ``"center"``."""
        if self.row == "middle" and self.column == "center":
            return "center"
        return f"{self.row} {self.column}"


@dataclass(frozen=True)
class Scene:
    id: str
    image: str  # path relative to the dataset root, e.g. "images/scene_00000.png"
    background: str
    objects: tuple[SceneObject, ...]

    def to_json(self) -> str:
        record = asdict(self)
        record["objects"] = [asdict(obj) for obj in self.objects]
        return json.dumps(record, sort_keys=True)

    @classmethod
    def from_dict(cls, record: dict, source: str = "<scenes>", line: int | None = None) -> Scene:
        try:
            objects = tuple(SceneObject(**obj) for obj in record["objects"])
            return cls(record["id"], record["image"], record["background"], objects)
        except (KeyError, TypeError) as exc:
            raise DataError(
                source, f"malformed scene ({exc})", "regenerate the synthetic data", line
            ) from exc


def read_scenes(path: Path) -> list[Scene]:
    """Read ``scenes.jsonl``; a malformed line raises ``DataError`` naming the file and line."""
    scenes = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(
                    str(path), f"invalid JSON ({exc.msg})", "regenerate the file", line_no
                ) from exc
            scenes.append(Scene.from_dict(record, str(path), line_no))
    return scenes


def write_scenes(path: Path, scenes: list[Scene]) -> None:
    path.write_text("".join(scene.to_json() + "\n" for scene in scenes), encoding="utf-8")
