"""Length-grouped, modality-pure batches (LLaVA's ``group_by_modality_length``), deterministic and resumable.

``ModalityLengthBatchSampler`` yields lists of dataset indices. Each epoch it shuffles the image samples
and the text-only samples separately (a generator seeded by ``seed + epoch``), cuts each stream into
*mega-batches* of ``batch_size × world_size × mega_factor`` samples, sorts every mega-batch by length and
slices it into batches, so neighbours in a batch have similar lengths and padding stays small; a batch never
mixes image and text-only samples. The batches of both modalities are then shuffled together and dealt to
the ranks round-robin: rank ``r`` of ``W`` gets batches ``r, r + W, …``, so the ranks' shares are disjoint
and together complete. When the number of batches does not divide by ``W``, the last round is filled with
the first batches again (as ``DistributedSampler`` pads), so every rank runs the same number of steps.

With ``group=False`` the same sampler is a plain seeded shuffle (all samples, batches in order), so every
training run gets the same resumability. The sampler is resumable inside an epoch: ``state_dict()``
records the epoch and how many batches this rank has handed out; after ``load_state_dict`` the next
iteration skips exactly those, so no sample is seen twice or skipped when a run resumes mid-epoch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch.utils.data import Sampler

from lvlm.errors import ConfigError


class ModalityLengthBatchSampler(Sampler[list[int]]):
    """Batches of similar length and one modality, sharded over ``world_size`` ranks."""

    def __init__(
        self,
        lengths: Sequence[int],
        has_image: Sequence[bool],
        batch_size: int,
        *,
        world_size: int = 1,
        rank: int = 0,
        seed: int = 0,
        mega_factor: int = 32,
        group: bool = True,
    ) -> None:
        if len(lengths) != len(has_image):
            raise ConfigError("length-grouped sampler: lengths and modalities differ in size")
        if batch_size < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ConfigError(
                f"length-grouped sampler: invalid batch_size={batch_size}, rank={rank}, "
                f"world_size={world_size}"
            )
        self.lengths, self.has_image = list(lengths), list(has_image)
        self.batch_size, self.world_size, self.rank = batch_size, world_size, rank
        self.seed, self.mega_factor, self.group = seed, max(1, mega_factor), group
        self.epoch, self._consumed, self._resume_skip = 0, 0, 0
        self.sampler = _EpochClock(self)  # Lightning calls ``batch_sampler.sampler.set_epoch``

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer before each epoch; a new epoch starts from its first batch."""
        if epoch != self.epoch:
            self._resume_skip = 0
        self.epoch = epoch

    def global_batches(self) -> list[list[int]]:
        """Every batch of this epoch, before dealing to ranks."""
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        if not self.group:  # a plain seeded shuffle, cut into batches
            order = torch.randperm(len(self.lengths), generator=generator).tolist()
            return [order[i : i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        batches: list[list[int]] = []
        for modality in (True, False):
            indices = [i for i, image in enumerate(self.has_image) if image == modality]
            batches += self._group(indices, generator)
        order = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in order]

    def _group(self, indices: list[int], generator: torch.Generator) -> list[list[int]]:
        if not indices:
            return []
        shuffled = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
        mega = self.batch_size * self.world_size * self.mega_factor
        batches: list[list[int]] = []
        for start in range(0, len(shuffled), mega):
            chunk = sorted(shuffled[start : start + mega], key=lambda i: -self.lengths[i])
            batches += [chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        return batches

    def rank_batches(self) -> list[list[int]]:
        """This rank's batches for the current epoch (padded so every rank has the same count)."""
        batches = self.global_batches()
        if not batches:
            return []
        rounds = -(-len(batches) // self.world_size)
        padded = batches + batches[: rounds * self.world_size - len(batches)]
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        batches = self.rank_batches()
        skip, self._resume_skip = self._resume_skip, 0
        self._consumed = skip
        for batch in batches[skip:]:
            self._consumed += 1
            yield batch

    def __len__(self) -> int:
        """Batches per epoch on this rank (a resumed epoch yields fewer; the trainer counts on)."""
        return -(-self._count_batches() // self.world_size)

    def _count_batches(self) -> int:
        if not self.group:
            return -(-len(self.lengths) // self.batch_size)
        images = sum(1 for flag in self.has_image if flag)
        texts = len(self.has_image) - images
        mega = self.batch_size * self.world_size * self.mega_factor
        return sum(_batches_in(n, mega, self.batch_size) for n in (images, texts))

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "consumed": self._consumed, "seed": self.seed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch = int(state["epoch"])
        self._resume_skip = int(state["consumed"])
        self.seed = int(state.get("seed", self.seed))


class _EpochClock:
    """What Lightning finds at ``batch_sampler.sampler``; forwards ``set_epoch`` to the batch sampler."""

    def __init__(self, owner: ModalityLengthBatchSampler) -> None:
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)

    def __len__(self) -> int:
        return len(self.owner.lengths)


def _batches_in(count: int, mega: int, batch_size: int) -> int:
    """Number of batches ``count`` samples make when cut into mega-batches, then batches."""
    full, rest = divmod(count, mega)
    return full * -(-mega // batch_size) + -(-rest // batch_size)


def padding_fraction(batches: Sequence[Sequence[int]], lengths: Sequence[int]) -> float:
    """Share of padded token slots over all batches (each batch is padded to its longest sample)."""
    slots = sum(max(lengths[i] for i in batch) * len(batch) for batch in batches if batch)
    real = sum(lengths[i] for batch in batches for i in batch)
    return 0.0 if slots == 0 else 1.0 - real / slots
