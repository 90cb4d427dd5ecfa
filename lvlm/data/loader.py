"""A training DataLoader whose position inside the epoch is saved in checkpoints.

Lightning saves the ``state_dict`` of every train dataloader that implements the ``state_dict`` /
``load_state_dict`` pair and restores it before the next iteration. ``ResumableDataLoader`` answers with
its batch sampler's state, where the number of batches already consumed comes from the trainer's own
progress counter (``progress``), not from the sampler: Lightning and the worker processes fetch batches
ahead, so the sampler has always handed out more than the model has trained on. After a restore the
sampler skips exactly the batches the checkpoint had trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch.utils.data import DataLoader

from lvlm.data.samplers import ModalityLengthBatchSampler


class ResumableDataLoader(DataLoader):
    """``DataLoader`` over a ``ModalityLengthBatchSampler`` with checkpointable position."""

    def __init__(
        self,
        dataset: Any,
        batch_sampler: ModalityLengthBatchSampler,
        progress: Callable[[], int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(dataset, batch_sampler=batch_sampler, **kwargs)
        self.progress = progress

    def state_dict(self) -> dict[str, Any]:
        state = self.batch_sampler.state_dict()
        if self.progress is not None:
            state["consumed"] = int(self.progress())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)
