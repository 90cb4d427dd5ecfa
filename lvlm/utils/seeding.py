"""Seeding: one call that makes Python, NumPy and torch draws repeatable.

Used by training (before building the model, so tiny presets get the same random frozen weights) and by
checkpoint loading (to rebuild those weights exactly). Lightning's ``seed_everything`` also tells
dataloader workers how to derive their seeds.
"""

from __future__ import annotations

import pytorch_lightning as pl


def seed_all(seed: int, *, verbose: bool = False) -> int:
    """Seed every generator the project draws from; returns the seed."""
    return int(pl.seed_everything(int(seed), workers=True, verbose=verbose))
