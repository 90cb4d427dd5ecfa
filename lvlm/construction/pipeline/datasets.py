"""Writing the four datasets (FOVIT, NoFOVIT, FOIT, NoFOIT; see ``docs/construction.md``) from stage records.

``assemble_samples`` joins the caption, question-answer and answer records of every planned item, re-checks
each formatted answer with its instruction's checker (so no non-compliant answer can reach a dataset, even
from an edited stage file) and counts every item that does not make it, by stage and reason. Every dataset
then gets exactly the same samples, so FO and NoFO share ids, images and questions.

Layout of ``<root>/<name>/``: ``train.json`` (LLaVA format: ``id``, ``image`` for the VIT variants,
``conversations`` human/gpt), ``meta.jsonl`` (per id: source image, instruction id and kind, attempts), and
for the VIT variants ``images/`` holding the sampled images, symlinked to the source files by default with
relative links (``image_mode=copy`` copies them instead). Files are written to a temporary name and renamed
into place.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lvlm.construction.backends.base import ImageItem
from lvlm.errors import ConfigError
from lvlm.registry import Registry

IMAGE_MODES = ("symlink", "copy")


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    vision: bool  # image in the prompt (VIT) or the caption as text (IT)
    formatted: bool  # format instruction + formatted answer (FO) or plain answer (NoFO)
    model_input: str
    target: str


DATASETS: Registry[DatasetSpec] = Registry("dataset")
for _spec in (
    DatasetSpec("fovit", True, True, "image + format instruction + question", "answer"),
    DatasetSpec("nofovit", True, False, "image + question", "answer'"),
    DatasetSpec("foit", False, True, "caption + format instruction + question", "answer"),
    DatasetSpec("nofoit", False, False, "caption + question", "answer'"),
):
    DATASETS.add(_spec.name, _spec)
DATASET_NAMES = ("fovit", "nofovit", "foit", "nofoit")
PAIRS = {"fovit": "nofovit", "nofovit": "fovit", "foit": "nofoit", "nofoit": "foit"}


@dataclass(frozen=True)
class Sample:
    """One finished item: shared by all four datasets."""

    item: ImageItem
    caption: str
    question: str
    instruction: Any  # FormatInstruction
    fo_answer: str
    nofo_answer: str
    attempts: int


def _ok(records: Mapping[str, dict], item_id: str, stage: str, skips: Counter[str]) -> dict | None:
    record = records.get(item_id)
    if record is None:
        skips[f"{stage}:not_finished"] += 1
        return None
    if record.get("status") != "ok":
        skips[f"{stage}:{record.get('reason', 'unknown')}"] += 1
        return None
    return record


def assemble_samples(
    items: Sequence[ImageItem],
    stages: Mapping[str, Mapping[str, dict]],
    instructions: Mapping[str, Any],
    check: Callable[..., Any],
) -> tuple[list[Sample], Counter[str]]:
    """Join stage records into samples (plan order); count each dropped item once as ``stage:reason``."""
    samples: list[Sample] = []
    skips: Counter[str] = Counter()
    for item in items:
        cap = _ok(stages["caption"], item.id, "caption", skips)
        qa = cap and _ok(stages["question_answer"], item.id, "question_answer", skips)
        ans = qa and _ok(stages["answer"], item.id, "answer", skips)
        if not ans:
            continue
        instruction = instructions.get(str(qa["instruction_id"]))
        if instruction is None:
            skips["verify:unknown_instruction"] += 1
            continue
        if not check(instruction, qa["answer"], request=qa["question"]).ok:
            skips["verify:noncompliant"] += 1
            continue
        samples.append(
            Sample(
                item, cap["caption"], qa["question"], instruction, qa["answer"], ans["answer"], qa["attempts"]
            )
        )
    return samples, skips


def human_prompt(spec: DatasetSpec, sample: Sample) -> str:
    """The user turn: ``<image>`` or ``Caption: …``, then (FO only) the instruction, then the question."""
    context = "<image>" if spec.vision else f"Caption: {sample.caption}"
    request = f"{sample.instruction.text} {sample.question}" if spec.formatted else sample.question
    return f"{context}\n{request}"


def llava_record(spec: DatasetSpec, sample: Sample) -> dict[str, Any]:
    record: dict[str, Any] = {"id": sample.item.id}
    if spec.vision:
        record["image"] = f"images/{sample.item.rel}"
    answer = sample.fo_answer if spec.formatted else sample.nofo_answer
    record["conversations"] = [
        {"from": "human", "value": human_prompt(spec, sample)},
        {"from": "gpt", "value": answer},
    ]
    return record


def meta_record(spec: DatasetSpec, sample: Sample) -> dict[str, Any]:
    meta: dict[str, Any] = {"id": sample.item.id, "source_image": str(sample.item.path)}
    if spec.formatted:
        meta.update(
            instruction_id=sample.instruction.id,
            instruction_kind=sample.instruction.kind,
            attempts=sample.attempts,
        )
    return meta


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace`` (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")


def _place_image(source: Path, target: Path, image_mode: str) -> None:
    if image_mode == "symlink":
        link = os.path.relpath(source, target.parent)  # relative: survives moving the project tree
        if target.is_symlink() and os.readlink(target) == link:
            return
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(link)
        os.replace(tmp, target)
    elif not (
        target.is_file() and not target.is_symlink() and target.stat().st_size == source.stat().st_size
    ):
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)


def sync_images(samples: Sequence[Sample], images_dir: Path, image_mode: str) -> None:
    """Make ``images_dir`` hold exactly the samples' images (link or copy), removing stale entries."""
    if image_mode not in IMAGE_MODES:
        raise ConfigError(f"image_mode '{image_mode}' is not supported; use one of: {', '.join(IMAGE_MODES)}")
    wanted = {sample.item.rel: sample.item.path.resolve() for sample in samples}
    for rel, source in wanted.items():
        target = images_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        _place_image(source, target, image_mode)
    if images_dir.exists():
        for path in sorted(images_dir.rglob("*"), reverse=True):
            if (path.is_file() or path.is_symlink()) and path.relative_to(
                images_dir
            ).as_posix() not in wanted:
                path.unlink()


def write_dataset(spec: DatasetSpec, samples: Sequence[Sample], root: Path, image_mode: str) -> Path:
    """Write ``<root>/<spec.name>/`` (train.json, meta.jsonl, images/ for VIT); return the train.json path."""
    out = root / spec.name
    out.mkdir(parents=True, exist_ok=True)
    if spec.vision:
        sync_images(samples, out / "images", image_mode)
    meta = "".join(json.dumps(meta_record(spec, s), ensure_ascii=False) + "\n" for s in samples)
    write_text_atomic(out / "meta.jsonl", meta)
    train = out / "train.json"
    write_json_atomic(train, [llava_record(spec, sample) for sample in samples])
    return train


def write_all(
    samples: Sequence[Sample], root: Path, image_mode: str, names: Sequence[str]
) -> dict[str, Path]:
    """Write every requested dataset; returns name → dataset directory."""
    return {name: write_dataset(DATASETS.get(name), samples, root, image_mode).parent for name in names}
