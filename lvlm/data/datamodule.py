"""LightningDataModule for LLaVA-format conversation data.

Resolves where the data lives (``kind``: ``synthetic`` generates the procedural dataset on first use,
``constructed`` builds a FOVIT/NoFOVIT/FOIT/NoFOIT dataset on first use, ``llava_json`` reads given files),
opens train/val ``LlavaJsonDataset``s (a validation split is carved from the training records when no
``val_json`` is given), and reports skipped records. Generation happens in ``prepare_data`` (rank 0 only).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig
from torch.utils.data import DataLoader, Subset
from transformers import PreTrainedTokenizerBase

from lvlm.data.collate import ConversationCollator
from lvlm.data.images import ImageProcessor
from lvlm.data.llava_json import LlavaJsonDataset, SkipReport
from lvlm.data.synthetic import ensure_synthetic_dataset
from lvlm.errors import ConfigError
from lvlm.models.lvlm import LVLM
from lvlm.templates import get_template

log = logging.getLogger(__name__)


def resolve_data_files(cfg: DictConfig | dict[str, Any]) -> tuple[Path, Path | None, Path]:
    """(train_json, val_json or None, image_root) for a ``data`` config; builds data when needed."""
    kind = cfg["kind"]
    if kind == "synthetic":
        syn = cfg["synthetic"]
        root = ensure_synthetic_dataset(
            Path(cfg["root"]), int(syn["num_scenes"]), int(syn["seed"]), int(syn["image_size"]),
            int(syn["max_turns"]), float(syn["val_fraction"]),
        )  # fmt: skip
        return root / "train.json", root / "val.json", root
    if kind == "constructed":
        from lvlm.data.construction.build import ensure_dataset

        root = ensure_dataset(str(cfg["dataset"]), cfg)
        return root / "train.json", None, root
    if kind == "llava_json":
        val = cfg.get("val_json")
        return Path(cfg["train_json"]), Path(val) if val else None, Path(cfg["image_root"])
    raise ConfigError(f"data.kind must be synthetic, constructed or llava_json, got '{kind}'")


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

    def prepare_data(self) -> None:
        resolve_data_files(self.cfg)

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        train_json, val_json, image_root = resolve_data_files(self.cfg)
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

    def _open(self, json_path: Path, image_root: Path) -> LlavaJsonDataset:
        dataset = LlavaJsonDataset(
            json_path, image_root, self.tokenizer, self.template, self.processor, self.num_image_tokens,
            self.image_token_id, int(self.cfg["max_length"]), str(self.cfg.get("on_error", "raise")),
        )  # fmt: skip
        for reason, count in dataset.skips.counts.items():
            self.skips.counts[reason] += count
            self.skips.examples.setdefault(reason, []).extend(dataset.skips.examples[reason])
        return dataset

    def _loader(self, dataset: Any, shuffle: bool) -> DataLoader:
        workers = int(self.cfg.get("num_workers", 0))
        return DataLoader(
            dataset, batch_size=int(self.cfg["batch_size"]), shuffle=shuffle, collate_fn=self.collate,
            num_workers=workers, persistent_workers=workers > 0,
        )  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set else []

    def write_skip_report(self, run_dir: Path) -> None:
        """Print and save the skipped-record counts (``skipped.json``)."""
        (run_dir / "skipped.json").write_text(json.dumps(self.skips.as_dict(), indent=2), encoding="utf-8")
        if self.skips.total:
            reasons = ", ".join(f"{reason}: {count}" for reason, count in self.skips.counts.items())
            log.warning("skipped %d bad record(s) (%s); details in %s", self.skips.total, reasons,
                        run_dir / "skipped.json")  # fmt: skip
