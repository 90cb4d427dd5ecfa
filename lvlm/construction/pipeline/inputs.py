"""Inputs of a construction build: the candidate images, the seeded sample, and the instruction assignment.

Images come from a folder (``construction.images_dir``, recursive; ids are relative paths without suffix)
or, when no folder is given, from the backend's default inputs (the ``synthetic`` backend generates
procedural scenes); a folder holding ``scenes.jsonl`` yields images that carry their scene facts, which a
backend registered with ``needs_scene_facts`` requires. ``sample_items`` draws ``sample_size`` of them with
the seed; ``load_instructions`` gets the format-instruction library and ``assign_instructions`` gives every
sampled item exactly one instruction, balanced so each instruction is used equally often (±1). An empty or
missing folder is a one-line ``DataError``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lvlm.construction.backends.base import ImageItem, get_backend
from lvlm.data.scene import read_scenes
from lvlm.errors import ConfigError, DataError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif")


def list_image_folder(folder: Path) -> list[ImageItem]:
    """Every image file under ``folder`` (recursive, sorted); ids are relative paths without suffix."""
    if not folder.is_dir():
        raise DataError(
            str(folder), "image folder not found", "set construction.images_dir to a folder of images"
        )
    items = [
        ImageItem(
            path.relative_to(folder).with_suffix("").as_posix(), path, path.relative_to(folder).as_posix()
        )
        for path in sorted(folder.rglob("*"))
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    ]
    if not items:
        raise DataError(
            str(folder),
            f"no images ({', '.join(IMAGE_SUFFIXES)}) found",
            "point construction.images_dir at images",
        )
    return items


def list_scene_items(root: Path) -> list[ImageItem]:
    """Images described by ``root/scenes.jsonl`` (synthetic data), each with its scene facts."""
    scenes = read_scenes(root / "scenes.jsonl")
    if not scenes:
        raise DataError(str(root / "scenes.jsonl"), "no scenes listed", "regenerate the synthetic data")
    return [ImageItem(s.id, root / s.image, Path(s.image).name, s) for s in scenes]


def resolve_inputs(construction: DictConfig) -> tuple[list[ImageItem], Path]:
    """The candidate images and their folder: ``images_dir``, or the backend's default inputs (the generated
    synthetic scenes); a folder holding ``scenes.jsonl`` gives items with scene facts."""
    backend = get_backend(str(construction.backend))
    images_dir = construction.get("images_dir")
    if images_dir:
        root = Path(str(images_dir)).expanduser()
    elif backend.default_images is not None:
        root = backend.default_images(construction)
    else:
        raise ConfigError(f"construction.images_dir is required for backend '{construction.backend}'")
    items = list_scene_items(root) if (root / "scenes.jsonl").is_file() else list_image_folder(root)
    if backend.needs_scene_facts and any(item.scene is None for item in items):
        raise ConfigError(
            f"{images_dir}: the {backend.name} backend needs scene facts (scenes.jsonl); fix: unset "
            "construction.images_dir to use generated scenes, or choose construction=openai"
        )
    return items, root


def sample_items(items: list[ImageItem], sample_size: int | None, seed: int) -> list[ImageItem]:
    """A seeded sample without replacement (all items if fewer), in id order."""
    if sample_size is not None and sample_size < 1:
        raise ConfigError(f"construction.sample_size must be >= 1 or null (all images), got {sample_size}")
    if sample_size is None or sample_size >= len(items):
        return sorted(items, key=lambda item: item.id)
    return sorted(random.Random(f"{seed}:sample").sample(items, sample_size), key=lambda item: item.id)


def load_instructions(cfg: DictConfig) -> list[Any]:
    """The format-instruction library: ``instructions.library_path`` if set, else ``build_library``."""
    from lvlm.construction.catalogue import instructions as lib

    spec = cfg.get("instructions") or {}
    if spec.get("library_path"):
        return list(lib.load_library(Path(spec["library_path"])))
    return list(lib.build_library(n=int(spec.get("num", 100)), seed=int(spec.get("seed", 0))))


def assign_instructions(items: list[ImageItem], library: list[Any], seed: int) -> dict[str, str]:
    """Each item gets one instruction; every instruction is used ⌊n/k⌋ or ⌈n/k⌉ times, order seeded."""
    if not library:
        raise ConfigError("the format-instruction library is empty; fix: set instructions.num >= 1")
    rng = random.Random(f"{seed}:instructions")
    pool = [library[index % len(library)].id for index in range(len(items))]
    rng.shuffle(pool)
    return {item.id: instruction_id for item, instruction_id in zip(items, pool, strict=True)}
