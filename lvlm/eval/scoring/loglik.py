"""Log-likelihood ranking scorer (diagnostic) of the verbalizer benchmark.

For each prompt the two verbalizer words are ranked by the summed log-probability of their tokens after
the chat-wrapped prompt. Tokenization at the boundary follows lm-evaluation-harness: trailing whitespace
of the context moves into the continuation, then ``context`` and ``context + continuation`` are encoded
and the continuation tokens are the ids past the context's length. The context is run ONCE per prompt
(batched, left-padded, explicit position ids, KV cache, last-position logits only, the batch's shared
instruction prefix once per batch); its last logits score
both words' first tokens, and only words longer than one token need a second, short pass over the
two continuations on top of the (duplicated) cache.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from lvlm.errors import DataError
from lvlm.eval.scoring.batching import length_sorted_batches, prefill, repeat_cache, right_pad
from lvlm.eval.types import Prediction, PromptItem, ScoringModel

BatchCallback = Callable[[list[int], list[Prediction]], None]


@dataclass(frozen=True)
class LoglikRequest:
    """Encoded context shared by both words and each word's continuation token ids."""

    context_ids: list[int]
    continuation_ids: tuple[list[int], list[int]]


def split_context(context: str, continuation: str) -> tuple[str, str]:
    """Move the context's trailing whitespace to the front of the continuation (lm-eval's rule)."""
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        return context[:-n_spaces], context[-n_spaces:] + continuation
    return context, continuation


def continuation_for(context: str, word: str, target_delimiter: str | None) -> str:
    """The continuation string for ``word``: ``delimiter + word``; auto = " " unless context ends in space."""
    if target_delimiter is None:
        target_delimiter = "" if context[-1:].isspace() else " "
    return target_delimiter + word


def encode_pair(
    model: ScoringModel, context: str, continuation: str, context_ids: list[int] | None = None
) -> tuple[list[int], list[int]]:
    """Token ids of the context and of the continuation, the latter taken from the joint encoding.

    ``context_ids`` may pass the already encoded (whitespace-split) context to skip encoding it again.
    """
    context, continuation = split_context(context, continuation)
    whole_ids = model.encode(context + continuation)
    context_ids = model.encode(context) if context_ids is None else context_ids
    return context_ids, whole_ids[len(context_ids) :]


def build_request(model: ScoringModel, item: PromptItem, target_delimiter: str | None) -> LoglikRequest:
    """Encode an item's context once and each word's continuation tokens."""
    context = model.format_prompt(item.text)
    context_ids = model.encode(split_context(context, "")[0])  # the split context is the same for both words
    pairs = [
        encode_pair(model, context, continuation_for(context, word, target_delimiter), context_ids)
        for word in item.words
    ]
    if not context_ids or not pairs[0][1] or not pairs[1][1]:
        raise DataError(
            item.task,
            f"empty context or continuation tokens for words {item.words!r}",
            "use non-empty verbalizer words",
            item.uid,
        )
    return LoglikRequest(context_ids, (pairs[0][1], pairs[1][1]))


def _tail_loglikelihoods(
    model: ScoringModel,
    requests: list[LoglikRequest],
    prefix_mask: torch.Tensor,
    prefix_positions: torch.Tensor,
    past: object,
) -> torch.Tensor:
    """Summed log-probs of every continuation token after the first, rows ordered (prompt, word)."""
    continuations = [ids for request in requests for ids in request.continuation_ids]
    tail_ids, tail_mask = right_pad([ids[:-1] for ids in continuations], model.pad_token_id)
    targets, target_mask = right_pad([ids[1:] for ids in continuations], model.pad_token_id)
    past = repeat_cache(past, 2)
    mask = torch.cat([prefix_mask.repeat_interleave(2, dim=0), tail_mask], dim=1)
    start = prefix_positions[:, -1:].repeat_interleave(2, dim=0) + 1
    positions = start + torch.arange(tail_ids.shape[1])[None, :]
    logits, _ = model.forward(model.embed(tail_ids), mask, positions, past)
    log_probs = torch.log_softmax(logits.float(), dim=-1).cpu()
    picked = log_probs.gather(-1, targets[..., None]).squeeze(-1)
    return (picked * target_mask).sum(dim=1)


@torch.inference_mode()
def loglikelihood_batch(model: ScoringModel, requests: list[LoglikRequest]) -> list[tuple[float, float]]:
    """Summed log-probability of both continuations of each request, with one context pass per prompt."""
    state = prefill(model, [request.context_ids for request in requests], model.pad_token_id)
    first_log_probs = torch.log_softmax(state.last_logits, dim=-1).cpu()
    first_ids = torch.tensor([[ids[0] for ids in request.continuation_ids] for request in requests])
    totals = first_log_probs.gather(-1, first_ids).double()
    if any(len(ids) > 1 for request in requests for ids in request.continuation_ids):
        tails = _tail_loglikelihoods(
            model, requests, state.attention_mask, state.position_ids, state.past_key_values
        )
        totals += tails.double().view(len(requests), 2)
    return [(float(row[0]), float(row[1])) for row in totals]


def score_loglikelihood(
    model: ScoringModel,
    items: list[PromptItem],
    *,
    batch_size: int = 8,
    target_delimiter: str | None = None,
    progress: bool = True,
    on_batch: BatchCallback | None = None,
) -> list[Prediction]:
    """Rank each item's two words by log-likelihood (ties go to label_0); order follows ``items``."""
    requests = [build_request(model, item, target_delimiter) for item in items]
    predictions: list[Prediction | None] = [None] * len(items)
    groups = [(item.task, item.set_name) for item in items]
    batches = length_sorted_batches([len(request.context_ids) for request in requests], batch_size, groups)
    with tqdm(
        total=len(items), desc="loglikelihood", disable=not progress, mininterval=2.0, leave=False
    ) as bar:
        for indices in batches:
            scores = loglikelihood_batch(model, [requests[i] for i in indices])
            batch_predictions = []
            for index, (first, second) in zip(indices, scores, strict=True):
                label = 0 if first >= second else 1
                lengths = [len(ids) for ids in requests[index].continuation_ids]
                prediction = Prediction(
                    label, label, loglikelihoods=(first, second), extra={"n_tokens": lengths}
                )
                predictions[index] = prediction
                batch_predictions.append(prediction)
            if on_batch is not None:
                on_batch(indices, batch_predictions)
            bar.update(len(indices))
    return [prediction for prediction in predictions if prediction is not None]
