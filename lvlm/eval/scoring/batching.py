"""Batch building shared by the scorers: length-sorted batches, left padding and position ids.

Decoder-only scoring pads on the LEFT so every sequence's last real token sits in the last column and a
KV cache can be extended column by column. Position ids are the running count of real tokens (the cumsum
of the attention mask minus one), so a padded sequence sees exactly the positions it would see alone;
pad columns are masked out of attention. ``prefill`` also runs a prefix shared by a whole batch once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PaddedBatch:
    """Left-padded token ids with their attention mask and position ids, all ``[batch, length]``."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    position_ids: torch.Tensor


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, groups: Sequence[object] | None = None
) -> list[list[int]]:
    """Indices in batches of similar length, longest first; with ``groups``, each group's items together.

    Grouping by prompt template (task, verbalizer set) keeps prompts that share an instruction prefix in
    the same batches, which ``prefill`` then computes once per batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    keys = [str(group) for group in groups] if groups is not None else [""] * len(lengths)
    order = sorted(range(len(lengths)), key=lambda index: (keys[index], -lengths[index], index))
    return [order[start : start + batch_size] for start in range(0, len(order), batch_size)]


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counting real tokens only: ``cumsum(mask) - 1``, clamped to 0 on (left) pad columns."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


def left_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> PaddedBatch:
    """Stack token sequences into a left-padded batch."""
    if not sequences or any(len(sequence) == 0 for sequence in sequences):
        raise ValueError("left_pad needs at least one sequence and no empty sequence")
    width = max(len(sequence) for sequence in sequences)
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        input_ids[row, width - len(sequence) :] = torch.as_tensor(list(sequence), dtype=torch.long)
        attention_mask[row, width - len(sequence) :] = 1
    return PaddedBatch(input_ids, attention_mask, position_ids_from_mask(attention_mask))


def right_pad(sequences: Sequence[Sequence[int]], pad_token_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (possibly empty) token sequences into right-padded ``(ids, mask)`` of width >= 1."""
    width = max([1, *(len(sequence) for sequence in sequences)])
    input_ids = torch.full((len(sequences), width), pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, sequence in enumerate(sequences):
        if sequence:
            input_ids[row, : len(sequence)] = torch.as_tensor(list(sequence), dtype=torch.long)
            attention_mask[row, : len(sequence)] = 1
    return input_ids, attention_mask


def repeat_cache(past_key_values: object, repeats: int) -> object:
    """Repeat every batch row of a KV cache ``repeats`` times (row i → rows i*r … i*r+r-1)."""
    if hasattr(past_key_values, "batch_repeat_interleave"):
        past_key_values.batch_repeat_interleave(repeats)
        return past_key_values
    if isinstance(past_key_values, (tuple, list)):
        return type(past_key_values)(repeat_cache(layer, repeats) for layer in past_key_values)
    if isinstance(past_key_values, torch.Tensor):
        return past_key_values.repeat_interleave(repeats, dim=0)
    raise TypeError(f"cannot repeat a KV cache of type {type(past_key_values).__name__}")


def forward_last_logits(
    model: object,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    past_key_values: object | None,
) -> tuple[torch.Tensor, object]:
    """Run ``model.forward`` on the embeddings of ``input_ids``; return last-position logits ``[B, V]``.

    Models that accept ``logits_to_keep`` (``HFScoringModel``) skip the vocabulary projection of every
    other position; any other ``ScoringModel`` returns full logits and the last column is taken.
    """
    extra = {"logits_to_keep": 1} if getattr(model, "supports_logits_to_keep", False) else {}
    logits, past_key_values = model.forward(
        model.embed(input_ids), attention_mask, position_ids, past_key_values, **extra
    )
    return logits[:, -1, :].float(), past_key_values


@dataclass
class Prefill:
    """Result of running a batch of prompts: last-position logits and the state to continue decoding."""

    last_logits: torch.Tensor  # [B, V]
    past_key_values: object
    attention_mask: torch.Tensor  # [B, T] over every cached column
    position_ids: torch.Tensor  # [B, T]; the last column is each row's last real position


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Number of leading tokens shared by every sequence."""
    shortest = min(len(sequence) for sequence in sequences)
    for position in range(shortest):
        token = sequences[0][position]
        if any(sequence[position] != token for sequence in sequences):
            return position
    return shortest


def prefill(
    model: object, sequences: Sequence[Sequence[int]], pad_token_id: int, min_shared: int = 4
) -> Prefill:
    """Run prompts through the model, computing a prefix shared by the whole batch only once.

    Prompts rendered from one template share their instruction tokens. When the batch shares at least
    ``min_shared`` leading tokens, that prefix runs once, its cache is repeated per row and the left-padded
    suffixes run on top (pad columns then sit between prefix and suffix; the attention mask hides them and
    position ids count real tokens only), so every row computes the same values as alone.
    """
    shared = common_prefix_length(sequences) if len(sequences) > 1 else 0
    shared = min(shared, min(len(sequence) for sequence in sequences) - 1)
    if shared < min_shared:
        batch = left_pad(sequences, pad_token_id)
        logits, past = forward_last_logits(
            model, batch.input_ids, batch.attention_mask, batch.position_ids, None
        )
        return Prefill(logits, past, batch.attention_mask, batch.position_ids)
    prefix = torch.as_tensor([list(sequences[0][:shared])], dtype=torch.long)
    prefix_mask = torch.ones_like(prefix)
    _, past = forward_last_logits(model, prefix, prefix_mask, position_ids_from_mask(prefix_mask), None)
    past = repeat_cache(past, len(sequences))
    suffixes = left_pad([sequence[shared:] for sequence in sequences], pad_token_id)
    mask = torch.cat([prefix_mask.expand(len(sequences), -1), suffixes.attention_mask], dim=1)
    positions = position_ids_from_mask(mask)
    logits, past = forward_last_logits(model, suffixes.input_ids, mask, positions[:, shared:], past)
    return Prefill(logits, past, mask, positions)
