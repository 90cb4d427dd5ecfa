"""Append-only cache of finished predictions, so a killed evaluation resumes where it stopped.

A cache file lives at ``<cache_dir>/<model fingerprint>/<scorer>-<settings digest>.jsonl``; each line is
one finished prediction keyed by the hash of the prompt text and its verbalizer words. Scorers report
every finished batch, which is appended and flushed to disk at once, so a kill loses at most the batch in
flight. Lines that cannot be read (typically the half-written last line of a killed run) are counted and
reported, then recomputed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from lvlm.eval.types import Prediction, PromptItem

log = logging.getLogger(__name__)


def prompt_hash(item: PromptItem) -> str:
    """Key of an item's prediction: what the model sees (prompt text) and how it is parsed (words)."""
    payload = json.dumps({"text": item.text, "words": list(item.words)}, ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def settings_digest(scorer: str, settings: Mapping[str, object]) -> str:
    payload = json.dumps({"scorer": scorer, "settings": dict(settings)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def prediction_to_record(key: str, prediction: Prediction) -> dict[str, object]:
    return {
        "key": key,
        "strict": prediction.strict,
        "lenient": prediction.lenient,
        "raw": prediction.raw,
        "loglikelihoods": list(prediction.loglikelihoods) if prediction.loglikelihoods is not None else None,
        "extra": prediction.extra,
    }


def prediction_from_record(record: Mapping[str, object]) -> tuple[str, Prediction]:
    loglikelihoods = record.get("loglikelihoods")
    prediction = Prediction(
        strict=int(record["strict"]),
        lenient=int(record["lenient"]),
        raw=str(record.get("raw", "")),
        loglikelihoods=(float(loglikelihoods[0]), float(loglikelihoods[1])) if loglikelihoods else None,
        extra=dict(record.get("extra") or {}),
    )
    return str(record["key"]), prediction


class PredictionCache:
    """Predictions of one (model fingerprint, scorer, decoding settings), keyed by ``prompt_hash``."""

    def __init__(self, cache_dir: str | Path, fingerprint: str, scorer: str, settings: Mapping[str, object]):
        self.path = Path(cache_dir) / fingerprint / f"{scorer}-{settings_digest(scorer, settings)}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._write_description(fingerprint, scorer, settings)
        self.skipped_lines = 0
        self._entries: dict[str, Prediction] = self._load()

    def _write_description(self, fingerprint: str, scorer: str, settings: Mapping[str, object]) -> None:
        description = self.path.with_suffix(".settings.json")
        if not description.exists():
            facts = {"fingerprint": fingerprint, "scorer": scorer, "settings": dict(settings)}
            description.write_text(json.dumps(facts, sort_keys=True, indent=2, default=str) + "\n")

    def _load(self) -> dict[str, Prediction]:
        entries: dict[str, Prediction] = {}
        if not self.path.exists():
            return entries
        with self.path.open(encoding="utf-8") as handle:
            for line_number, line in enumerate(handle, start=1):
                try:
                    key, prediction = prediction_from_record(json.loads(line))
                except (ValueError, KeyError, TypeError, IndexError):
                    self.skipped_lines += 1
                    log.warning(
                        "%s: line %d: unreadable cache entry skipped; fix: none needed, it will be "
                        "recomputed",
                        self.path,
                        line_number,
                    )
                    continue
                entries[key] = prediction
        return entries

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> Prediction | None:
        return self._entries.get(key)

    def append(self, keys: Sequence[str], predictions: Sequence[Prediction]) -> None:
        """Append finished predictions and force them to disk before returning."""
        lines = [
            json.dumps(prediction_to_record(key, prediction), ensure_ascii=False, sort_keys=True) + "\n"
            for key, prediction in zip(keys, predictions, strict=True)
        ]
        with self.path.open("a", encoding="utf-8") as handle:
            if handle.tell() > 0 and not self._ends_with_newline():
                handle.write("\n")  # a killed writer may have left half a line; start a fresh one
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        self._entries.update(zip(keys, predictions, strict=True))

    def _ends_with_newline(self) -> bool:
        with self.path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) == b"\n"
