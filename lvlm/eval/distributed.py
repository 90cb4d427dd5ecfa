"""Data-parallel evaluation across processes.

When launched with several processes (``torchrun``, or inside a Lightning DDP run), each rank scores every
``world_size``-th prompt and the predictions are gathered back into prompt order on every rank. Outside a
distributed launch everything degrades to a single process. The gloo backend works on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_from_env(backend: str = "gloo") -> DistInfo:
    """Join the process group described by torchrun's environment (no-op for a single process)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size())
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        dist.init_process_group(backend=backend)
        return DistInfo(dist.get_rank(), dist.get_world_size())
    return DistInfo(0, 1)


def shard_indices(total: int, info: DistInfo) -> list[int]:
    return list(range(info.rank, total, info.world_size))


def gather_in_order(local: list[Any], total: int, info: DistInfo) -> list[Any]:
    """Reassemble per-rank results of ``shard_indices`` into the original order."""
    if info.world_size == 1:
        return list(local)
    parts: list[list[Any]] = [[] for _ in range(info.world_size)]
    dist.all_gather_object(parts, local)
    ordered: list[Any] = [None] * total
    for rank, part in enumerate(parts):
        for position, value in zip(range(rank, total, info.world_size), part, strict=True):
            ordered[position] = value
    return ordered


def broadcast_object(value: Any, info: DistInfo) -> Any:
    """Rank 0's ``value`` on every rank."""
    if info.world_size == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
