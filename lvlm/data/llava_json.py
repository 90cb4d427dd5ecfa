"""LLaVA-format conversation datasets (JSON list + image folder).

Each record has ``id``, optional ``image`` (path relative to ``image_root``) and ``conversations`` (a list
of ``{"from": "human"|"gpt", "value": ...}``). Records are validated when the dataset opens: structure,
assistant turns, image file present and decodable, and ``<image>`` placeholders (at most one per image; a
record with an image but no placeholder gets one prepended, as LLaVA does). With ``on_error="raise"`` the
first bad record stops the run with one line naming file, record and fix; with ``"skip"`` bad records are
counted by reason in ``SkipReport`` and reported at the end of the run.

Some problems only show when a sample is built (an ``<image>`` cut by ``max_length``, a file that broke
after the dataset opened). ``__getitem__`` then returns a ``{"skipped": SkippedRecord}`` marker instead of
raising — DataLoader workers cannot report to the main process any other way, and an exception in a
worker reaches the main process as a traceback. The collator passes the markers on in ``batch["skipped"]``
and the main process (``SkipReport.absorb``, called by the DataModule for every batch) counts them once per
record, or raises the record's ``DataError`` under ``on_error="raise"``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset, get_worker_info
from transformers import PreTrainedTokenizerBase

from lvlm.constants import IGNORE_INDEX, IMAGE_TOKEN
from lvlm.data.conversation import encode_conversation, turns_from_llava
from lvlm.data.images import ImageProcessor, verify_image
from lvlm.errors import ConfigError, DataError
from lvlm.templates import ChatTemplate


def skip_reason(exc: DataError) -> str:
    """The count key of a bad record: its kind of problem, without paths or numbers (those stay in the
    example messages)."""
    if exc.reason:
        return exc.reason
    return re.sub(r"\d+", "N", exc.problem.split(" (")[0].split(":")[0]).strip()


@dataclass(frozen=True)
class SkippedRecord:
    """A record that failed while its sample was built (picklable: it crosses DataLoader workers)."""

    source: str
    index: int  # position in the dataset, to count each record once over epochs
    record: str | int
    reason: str
    problem: str
    fix: str

    @classmethod
    def from_error(cls, exc: DataError, index: int) -> SkippedRecord:
        record = exc.record if exc.record is not None else index
        return cls(exc.source, index, record, skip_reason(exc), exc.problem, exc.fix)

    def error(self) -> DataError:
        return DataError(self.source, self.problem, self.fix, self.record, reason=self.reason)


@dataclass
class SkipReport:
    """Skipped records by reason, with a few example messages per reason."""

    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    keyed: dict = field(default_factory=dict, repr=False)  # key -> (reason, message)

    def add(self, reason: str, message: str, key: Any = None) -> bool:
        """Count one skipped record (once per ``key`` when given); True when it was new."""
        if key is not None:
            if key in self.keyed:
                return False
            self.keyed[key] = (reason, message)
        self.counts[reason] += 1
        self.examples.setdefault(reason, [])
        if len(self.examples[reason]) < 3:
            self.examples[reason].append(message)
        return True

    def add_error(self, exc: DataError, key: Any = None) -> bool:
        return self.add(skip_reason(exc), str(exc), key)

    def absorb(self, batch: dict[str, Any], on_error: str) -> list[SkippedRecord]:
        """Take the ``skipped`` markers out of a collated batch: raise the first under ``"raise"``, else
        count each record once. Returns the newly counted records."""
        skipped: list[SkippedRecord] = batch.pop("skipped", None) or []
        if skipped and on_error == "raise":
            raise skipped[0].error()
        return [s for s in skipped if self.add(s.reason, str(s.error()), (s.source, s.index))]

    def merge(self, other: SkipReport) -> None:
        """Add ``other``'s counts; records counted under a key in both are counted once."""
        for key, (reason, message) in other.keyed.items():
            self.add(reason, message, key)
        keyed = Counter(reason for reason, _ in other.keyed.values())
        for reason, count in other.counts.items():
            if count - keyed[reason] > 0:
                self.counts[reason] += count - keyed[reason]
                kept = self.examples.setdefault(reason, [])
                kept.extend(other.examples.get(reason, [])[: max(0, 3 - len(kept))])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict:
        return {"total": self.total, "by_reason": dict(self.counts), "examples": self.examples}


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        raise DataError(
            str(path), "dataset file not found", "check data.train_json / build the dataset first"
        )
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(str(path), f"invalid JSON at line {exc.lineno} ({exc.msg})", "fix the file") from exc
    if not isinstance(records, list):
        raise DataError(str(path), "top level is not a list of records", "write a JSON list of records")
    return records


def validate_record(
    record: object, index: int, source: str, image_root: Path, image_size: int = 64
) -> list[tuple[str, str]]:
    """Return the record's (user, assistant) turns or raise ``DataError``."""
    if not isinstance(record, dict) or not isinstance(record.get("conversations"), list):
        raise DataError(
            source, "missing 'conversations' list", "give every record a conversations list", index
        )
    name = record.get("id", index)
    turns = turns_from_llava(record["conversations"], source, name)
    for number, (_, answer) in enumerate(turns, start=1):
        if not answer.strip():
            raise DataError(
                source, f"empty assistant answer (turn {number})",
                "give every 'gpt' message its answer text, or drop the record", name,
                reason="empty assistant answer",
            )  # fmt: skip
    placeholders = sum(user.count(IMAGE_TOKEN) for user, _ in turns)
    placeholders += sum(answer.count(IMAGE_TOKEN) for _, answer in turns)
    has_image = bool(record.get("image"))
    if placeholders > int(has_image):
        problem = f"{placeholders} <image> placeholders but {int(has_image)} image(s)"
        raise DataError(source, problem, "use one <image> placeholder per image, in the question", name)
    if has_image:
        verify_image(image_root / str(record["image"]), source, name, image_size)
        turns = [(user.replace(IMAGE_TOKEN, "").strip(), answer) for user, answer in turns]
        turns[0] = (image_first(turns[0][0]), turns[0][1])
    return turns


def image_first(question: str) -> str:
    """LLaVA's placement: the image placeholder moves to the start of the first question, on its own line.

    Wherever ``<image>`` stands in the first human turn (or when it is missing), the model sees
    ``<image>\n<question without the placeholder>``, as LLaVA's ``preprocess_multimodal`` lays it out.
    """
    text = question.replace(IMAGE_TOKEN, "").strip()
    return f"{IMAGE_TOKEN}\n{text}"


class LlavaJsonDataset(Dataset):
    """Tokenised LLaVA-format samples: ``input_ids``, ``labels`` and an optional ``pixel_values``."""

    def __init__(
        self,
        json_path: Path,
        image_root: Path,
        tokenizer: PreTrainedTokenizerBase,
        template: ChatTemplate,
        image_processor: ImageProcessor,
        num_image_tokens: int,
        image_token_id: int,
        max_length: int,
        on_error: str = "raise",
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"data.on_error must be 'raise' or 'skip', got '{on_error}'")
        if max_length <= num_image_tokens:
            raise ConfigError(
                f"{json_path}: data.max_length={max_length} leaves no room for text after the "
                f"{num_image_tokens} image tokens of the vision tower; fix: raise data.max_length above "
                f"{num_image_tokens}"
            )
        self.source, self.image_root = str(json_path), Path(image_root)
        self.tokenizer, self.template, self.processor = tokenizer, template, image_processor
        self.num_image_tokens, self.image_token_id, self.max_length = (
            num_image_tokens,
            image_token_id,
            max_length,
        )
        self.on_error = on_error
        self.skips = SkipReport()
        self.samples: list[tuple[dict, list[tuple[str, str]]]] = []
        size = int(getattr(image_processor, "image_size", 64))
        for index, record in enumerate(read_records(Path(json_path))):
            try:
                turns = validate_record(record, index, self.source, self.image_root, size)
                self.samples.append((record, turns))
            except DataError as exc:
                if on_error == "raise":
                    raise
                self.skips.add_error(exc)

    def __len__(self) -> int:
        return len(self.samples)

    def has_image(self) -> list[bool]:
        """Per sample: does it carry an image (the modality the length-grouped sampler keeps apart)."""
        return [bool(record.get("image")) for record, _ in self.samples]

    def token_lengths(self) -> list[int]:
        """Per sample: its token count without template overhead, image tokens included (for grouping).

        One batched call to the (fast) tokenizer over every sample's text; the chat template adds a
        near-constant number of tokens per turn, which does not change the grouping.
        """
        texts = [" ".join(f"{user} {answer}" for user, answer in turns) for _, turns in self.samples]
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        extra = self.num_image_tokens - 1  # the <image> placeholder already counts as one token
        return [
            min(len(ids) + (extra if image else 0), self.max_length)
            for ids, image in zip(encoded, self.has_image(), strict=True)
        ]

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The sample, or ``{"skipped": SkippedRecord}`` when it cannot be built under ``on_error="skip"``
        or inside a DataLoader worker (the main process raises it there; see the module docstring)."""
        try:
            return self._build(index)
        except DataError as exc:
            if self.on_error == "raise" and get_worker_info() is None:
                raise
            return {"skipped": SkippedRecord.from_error(exc, index)}

    def _build(self, index: int) -> dict[str, torch.Tensor]:
        record, turns = self.samples[index]
        name = record.get("id", index)
        encoded = encode_conversation(
            self.tokenizer,
            self.template,
            turns,
            self.num_image_tokens,
            self.image_token_id,
            self.source,
            name,
        )
        input_ids, labels = encoded.input_ids[: self.max_length], encoded.labels[: self.max_length]
        if (
            encoded.num_images
            and input_ids.count(self.image_token_id) < self.num_image_tokens * encoded.num_images
        ):
            raise DataError(
                self.source, f"image tokens cut by max_length={self.max_length}", "raise data.max_length",
                name, reason="image tokens cut by max_length",
            )  # fmt: skip
        if all(label == IGNORE_INDEX for label in labels):
            raise DataError(
                self.source, f"answer cut by max_length={self.max_length} (nothing left to train on)",
                "raise data.max_length or shorten the question", name, reason="answer cut by max_length",
            )  # fmt: skip
        item = {"input_ids": torch.tensor(input_ids), "labels": torch.tensor(labels)}
        if encoded.num_images:
            item["pixel_values"] = self.processor.load(
                self.image_root / str(record["image"]), self.source, name
            )
        return item
