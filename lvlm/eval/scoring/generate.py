"""Batched greedy-generation scorer of the verbalizer benchmark.

Each prompt is chat-wrapped by the model, encoded and decoded greedily for at most ``max_new_tokens``
tokens with a hand-written KV-cached loop over ``ScoringModel.forward`` (so any model honouring the
protocol, including the LVLM adapter, works). Batches are length-sorted within each (task, verbalizer
set), LEFT-padded with explicit position ids, and their shared instruction prefix is computed once
(``batching.prefill``), so a prompt's tokens do not depend on its batch-mates. A sequence stops at EOS
or when its first non-blank line has ended; the loop exits as soon as every sequence has stopped. The
decoded text is parsed into strict/lenient labels by ``lvlm.eval.scoring.parsing.parse``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from lvlm.errors import ConfigError
from lvlm.eval.scoring.batching import forward_last_logits, length_sorted_batches, prefill
from lvlm.eval.scoring.parsing import parse
from lvlm.eval.types import Prediction, PromptItem, ScoringModel

BatchCallback = Callable[[list[int], list[Prediction]], None]
_LINE_BREAKS = ("\n", "\r")


class _LineEndDetector:
    """Tells whether a generated sequence has finished its first non-blank line."""

    def __init__(self, model: ScoringModel) -> None:
        self.model = model
        self._breaks: dict[int, bool] = {}

    def token_may_break(self, token: int) -> bool:
        if token not in self._breaks:
            text = self.model.decode([token])
            self._breaks[token] = any(mark in text for mark in _LINE_BREAKS)
        return self._breaks[token]

    def line_ended(self, generated: list[int]) -> bool:
        if not self.token_may_break(generated[-1]):
            return False
        text = self.model.decode(generated).lstrip()
        return any(mark in text for mark in _LINE_BREAKS)


def _advance(
    next_ids: list[int],
    generated: list[list[int]],
    finished: list[bool],
    eos_ids: frozenset[int],
    detector: _LineEndDetector,
) -> None:
    """Append each unfinished sequence's next token and mark sequences that stop."""
    for row, token in enumerate(next_ids):
        if finished[row]:
            continue
        if token in eos_ids:
            finished[row] = True
            continue
        generated[row].append(token)
        finished[row] = detector.line_ended(generated[row])


@torch.inference_mode()
def generate_batch(
    model: ScoringModel,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    detector: _LineEndDetector | None = None,
) -> list[list[int]]:
    """Greedy continuations (EOS excluded) of token-id ``prompts`` decoded together in one batch."""
    detector = detector or _LineEndDetector(model)
    state = prefill(model, prompts, model.pad_token_id)
    logits, past = state.last_logits, state.past_key_values
    mask, positions = state.attention_mask, state.position_ids
    generated: list[list[int]] = [[] for _ in prompts]
    finished = [False] * len(prompts)
    for step in range(max_new_tokens):
        next_ids = logits.argmax(dim=-1).tolist()
        _advance(next_ids, generated, finished, model.eos_token_ids, detector)
        if all(finished) or step == max_new_tokens - 1:
            break
        feed = [model.pad_token_id if done else token for token, done in zip(next_ids, finished, strict=True)]
        mask = torch.cat([mask, torch.ones((len(prompts), 1), dtype=mask.dtype)], dim=1)
        positions = positions[:, -1:] + 1
        logits, past = forward_last_logits(model, torch.tensor(feed)[:, None], mask, positions, past)
    return generated


def score_generate(
    model: ScoringModel,
    items: list[PromptItem],
    *,
    batch_size: int = 8,
    max_new_tokens: int = 8,
    progress: bool = True,
    on_batch: BatchCallback | None = None,
) -> list[Prediction]:
    """Greedy-generate a short answer for every item and parse it; predictions follow ``items`` order."""
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    prompts = [model.encode(model.format_prompt(item.text)) for item in items]
    detector = _LineEndDetector(model)
    predictions: list[Prediction | None] = [None] * len(items)
    groups = [(item.task, item.set_name) for item in items]
    batches = length_sorted_batches([len(prompt) for prompt in prompts], batch_size, groups)
    with tqdm(total=len(items), desc="generate", disable=not progress, mininterval=2.0, leave=False) as bar:
        for indices in batches:
            outputs = generate_batch(model, [prompts[i] for i in indices], max_new_tokens, detector)
            batch_predictions = []
            for index, tokens in zip(indices, outputs, strict=True):
                raw = model.decode(tokens)
                strict, lenient = parse(raw, items[index].words)
                predictions[index] = Prediction(strict, lenient, raw=raw, extra={"n_tokens": len(tokens)})
                batch_predictions.append(predictions[index])
            if on_batch is not None:
                on_batch(indices, batch_predictions)
            bar.update(len(indices))
    return [prediction for prediction in predictions if prediction is not None]
