"""The length-grouped, modality-pure batch sampler: lengths, purity, determinism, DDP shares, resume."""

from __future__ import annotations

import random

import pytest

from lvlm.data.samplers import ModalityLengthBatchSampler, padding_fraction
from lvlm.errors import ConfigError


def mixture(n: int = 1000, seed: int = 0) -> tuple[list[int], list[bool]]:
    rng = random.Random(seed)
    images = [rng.random() < 0.7 for _ in range(n)]
    lengths = [int(rng.lognormvariate(5.0, 0.6)) + (256 if image else 0) for image in images]
    return lengths, images


def test_batches_are_modality_pure_and_of_similar_length():
    lengths, images = mixture(2000)
    sampler = ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=1)
    batches = list(sampler)
    assert all(len({images[i] for i in batch}) == 1 for batch in batches)
    grouped = padding_fraction(batches, lengths)
    plain = padding_fraction(
        list(ModalityLengthBatchSampler(lengths, images, 8, seed=1, group=False)), lengths
    )
    assert grouped < 0.05 < plain


def test_every_sample_once_per_epoch_and_deterministic_by_seed():
    lengths, images = mixture(203)
    first = list(ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=3))
    again = list(ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=3))
    other = list(ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=4))
    assert first == again and first != other
    assert sorted(i for batch in first for i in batch) == list(range(203))
    assert len(first) == len(ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=3))


def test_epochs_reshuffle():
    lengths, images = mixture(200)
    sampler = ModalityLengthBatchSampler(lengths, images, batch_size=8)
    epoch0 = list(sampler)
    sampler.sampler.set_epoch(1)  # how Lightning reaches it
    assert list(sampler) != epoch0


@pytest.mark.parametrize("world_size", [2, 4])
def test_ddp_shares_are_disjoint_and_complete(world_size):
    lengths, images = mixture(64 * world_size * 3)
    # batch 8 with 64·W·3 samples of each modality count: use equal-sized modality groups so batches divide
    images = [i % 2 == 0 for i in range(len(lengths))]
    shares = [
        [
            i
            for batch in ModalityLengthBatchSampler(lengths, images, 8, world_size=world_size, rank=r)
            for i in batch
        ]
        for r in range(world_size)
    ]
    flat = [i for share in shares for i in share]
    assert sorted(flat) == list(range(len(lengths)))  # complete and disjoint
    assert len({len(share) for share in shares}) == 1


def test_uneven_ddp_shares_have_equal_step_counts():
    lengths, images = mixture(101)
    counts = {
        len(list(ModalityLengthBatchSampler(lengths, images, 8, world_size=3, rank=r))) for r in range(3)
    }
    assert len(counts) == 1


def test_resume_skips_exactly_the_consumed_batches():
    lengths, images = mixture(120)
    full = list(ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=5))
    resumed = ModalityLengthBatchSampler(lengths, images, batch_size=8, seed=5)
    resumed.load_state_dict({"epoch": 0, "consumed": 4, "seed": 5})
    assert list(resumed) == full[4:]
    assert list(resumed) == full  # the next pass is a whole epoch again


def test_bad_arguments_are_one_line_errors():
    with pytest.raises(ConfigError, match="rank=2, world_size=2"):
        ModalityLengthBatchSampler([1, 2], [True, False], 8, world_size=2, rank=2)
