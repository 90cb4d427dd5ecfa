"""LightningDataModule for LLaVA-format conversation data.

Resolves where the data lives through the ``data.kind`` registry (``lvlm.data.sources``), opens train/val
``LlavaJsonDataset``s (a validation split is carved from the training records when no ``val_json`` is
given), and reports skipped records. Generation happens in ``prepare_data`` (rank 0 only).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset
from transformers import PreTrainedTokenizerBase

from lvlm.data.collate import ConversationCollator
from lvlm.data.images import ImageProcessor
from lvlm.data.llava_json import LlavaJsonDataset, SkipReport
from lvlm.data.loader import ResumableDataLoader
from lvlm.data.samplers import ModalityLengthBatchSampler
from lvlm.data.sources import resolve_data_files
from lvlm.errors import DataError
from lvlm.models.lvlm import LVLM
from lvlm.templates import get_template
from lvlm.utils.config import to_plain

log = logging.getLogger(__name__)


def _no_training_records(dataset: LlavaJsonDataset, held_out: int) -> DataError:
    """The one-line error for a training set that ends up empty."""
    skipped = dataset.skips.total
    counts = f"{len(dataset) + skipped} in the file, {skipped} skipped"
    if held_out:
        fix = "lower data.val_fraction or add records"
        counts += f", {held_out} held out for validation"
    elif skipped:
        fix = "see skipped.json in the run directory for why each record was skipped"
    else:
        fix = "point data.train_json at a non-empty LLaVA-format list"
    return DataError(dataset.source, f"no training records ({counts})", fix)


class LlavaDataModule(pl.LightningDataModule):
    def __init__(
        self, cfg: DictConfig, tokenizer: PreTrainedTokenizerBase, model: LVLM, template: str
    ) -> None:
        super().__init__()
        self.cfg, self.tokenizer, self.template = cfg, tokenizer, get_template(template)
        vision = model.vision
        self.processor = ImageProcessor(vision.image_size, vision.mean, vision.std)
        self.num_image_tokens, self.image_token_id = model.num_image_tokens, model.image_token_id
        self.collate = ConversationCollator(tokenizer.pad_token_id)
        self.train_set = self.val_set = None
        self.skips = SkipReport()
        self._train_keys: set[tuple[str, int]] = set()
        self._train_skipped = 0  # training records skipped while their samples were built

    def prepare_data(self) -> None:
        resolve_data_files(to_plain(self.cfg))

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        files = resolve_data_files(to_plain(self.cfg))
        train_json, val_json, image_root = files.train_json, files.val_json, files.image_root
        train = self._open(train_json, image_root)
        if val_json is not None and val_json.exists():
            self.train_set, self.val_set = train, self._open(val_json, image_root)
        else:
            n_val = round(len(train) * float(self.cfg.get("val_fraction", 0.05)))
            self.val_set = Subset(train, range(n_val)) if n_val else None
            self.train_set = Subset(train, range(n_val, len(train)))
        log.info(
            "data: %d train / %d val samples from %s",
            len(self.train_set),
            len(self.val_set or []),
            train_json,
        )
        if len(self.train_set) == 0:
            carved = len(self.val_set) if isinstance(self.val_set, Subset) else 0
            raise _no_training_records(train, carved)
        indices = self.train_set.indices if isinstance(self.train_set, Subset) else range(len(train))
        self._train_keys = {(train.source, int(i)) for i in indices}
        self._train_skipped = 0

    def _open(self, json_path: Path, image_root: Path) -> LlavaJsonDataset:
        dataset = LlavaJsonDataset(
            json_path, image_root, self.tokenizer, self.template, self.processor, self.num_image_tokens,
            self.image_token_id, int(self.cfg["max_length"]), str(self.cfg.get("on_error", "raise")),
        )  # fmt: skip
        self.skips.merge(dataset.skips)
        return dataset

    def on_before_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Count (or, under ``on_error=raise``, raise) the records the workers could not build."""
        if isinstance(batch, dict) and "skipped" in batch:
            for skipped in self.skips.absorb(batch, str(self.cfg.get("on_error", "raise"))):
                log.info("skipped %s", skipped.error())
                self._train_skipped += (skipped.source, skipped.index) in self._train_keys
            if self._train_keys and self._train_skipped >= len(self._train_keys):
                source = next(iter(self._train_keys))[0]
                raise DataError(
                    source, f"every training record was skipped ({self.skips.total} bad records)",
                    "see skipped.json in the run directory for why, and fix the records or data.max_length",
                )  # fmt: skip
        return batch

    def gather_skips(self) -> None:
        """Merge every rank's skip counts into this rank's (collective: call on all ranks, or on none)."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() < 2:
            return
        keyed: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(keyed, self.skips.keyed)  # records met while building samples, per rank
        for records in keyed:  # the skips found when the dataset opened are the same on every rank
            for key, (reason, message) in records.items():
                self.skips.add(reason, message, key)

    def _loader(self, dataset: Any, shuffle: bool) -> DataLoader:
        workers = int(self.cfg.get("num_workers", 0))
        return DataLoader(
            dataset, batch_size=int(self.cfg["batch_size"]), shuffle=shuffle, collate_fn=self.collate,
            num_workers=workers, persistent_workers=workers > 0,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        """Seeded, resumable batches; length-grouped by modality when ``data.group_by_modality_length``."""
        workers = int(self.cfg.get("num_workers", 0))
        return ResumableDataLoader(
            self.train_set, self.train_batch_sampler(), progress=self._batches_trained,
            collate_fn=self.collate, num_workers=workers, persistent_workers=workers > 0,
            pin_memory=self._pin_memory(),
        )  # fmt: skip

    def train_batch_sampler(self) -> ModalityLengthBatchSampler:
        base, indices = _base_and_indices(self.train_set)
        group = bool(self.cfg.get("group_by_modality_length", False))
        lengths = base.token_lengths() if group else [0] * len(base)
        images = base.has_image()
        trainer = getattr(self, "trainer", None)
        return ModalityLengthBatchSampler(
            [lengths[i] for i in indices], [images[i] for i in indices], int(self.cfg["batch_size"]),
            world_size=int(getattr(trainer, "world_size", 1) or 1),
            rank=int(getattr(trainer, "global_rank", 0) or 0),
            seed=int(self.cfg.get("seed", 0) or 0), group=group,
        )  # fmt: skip

    def _pin_memory(self) -> bool:
        """``data.pin_memory``; unset (null) means pinned exactly when a GPU is present."""
        setting = self.cfg.get("pin_memory")
        return torch.cuda.is_available() if setting is None else bool(setting)

    def _batches_trained(self) -> int:
        """Batches of the current epoch the trainer has finished (where a resumed run must continue)."""
        return int(self.trainer.fit_loop.epoch_loop.batch_progress.current.processed)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set else []

    def write_skip_report(self, run_dir: Path) -> None:
        """Print and save the skipped-record counts (``skipped.json``)."""
        (run_dir / "skipped.json").write_text(json.dumps(self.skips.as_dict(), indent=2), encoding="utf-8")
        if self.skips.total:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in self.skips.counts.items())
            log.warning("skipped %d bad record(s) (%s); details in %s", self.skips.total, reasons,
                        run_dir / "skipped.json")  # fmt: skip


def _base_and_indices(dataset: Any) -> tuple[LlavaJsonDataset, list[int]]:
    """The underlying ``LlavaJsonDataset`` of a dataset or ``Subset``, and the indices it exposes."""
    if isinstance(dataset, Subset):
        return dataset.dataset, list(dataset.indices)
    return dataset, list(range(len(dataset)))
