"""Batched greedy-generation scorer of the verbalizer benchmark.

Each prompt is chat-wrapped by the model, encoded and decoded greedily for at most ``max_new_tokens``
tokens (default 32) with a hand-written KV-cached loop over ``ScoringModel.forward`` (so any model
honouring the protocol, including the LVLM adapter, works). Batches are length-sorted within each (task,
verbalizer set), LEFT-padded with explicit position ids, and their shared instruction prefix is computed
once (``batching.prefill``), so a prompt's tokens do not depend on its batch-mates. A sequence stops at EOS
(with ``parse_scope="first_line"`` also when its first non-blank line has ended, since nothing after it is
read); the loop exits as soon as every sequence has stopped. The decoded text is parsed into strict/lenient
labels by ``lvlm.eval.scoring.parsing.parse_answer`` in ``parse_scope`` (``answer``: the whole answer, the
default; ``first_line``); the first-line labels are kept in ``Prediction.extra["first_line"]`` so the
results can count answers found only past the first line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from tqdm.auto import tqdm

from lvlm.errors import ConfigError
from lvlm.eval.scoring.batching import forward_last_logits, length_sorted_batches, prefill
from lvlm.eval.scoring.parsing import PARSE_SCOPES, parse_answer
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
    detector: _LineEndDetector | None,
) -> None:
    """Append each unfinished sequence's next token and mark sequences that stop."""
    for row, token in enumerate(next_ids):
        if finished[row]:
            continue
        if token in eos_ids:
            finished[row] = True
            continue
        generated[row].append(token)
        finished[row] = detector is not None and detector.line_ended(generated[row])


@torch.inference_mode()
def generate_batch(
    model: ScoringModel,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int,
    detector: _LineEndDetector | None = None,
    *,
    stop_at_line_end: bool = True,
) -> list[list[int]]:
    """Greedy continuations (EOS excluded) of token-id ``prompts`` decoded together in one batch.

    With ``stop_at_line_end`` a sequence also stops once its first non-blank line has ended.
    """
    detector = (detector or _LineEndDetector(model)) if stop_at_line_end else None
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
    max_new_tokens: int = 32,
    parse_scope: str = "answer",
    progress: bool = True,
    on_batch: BatchCallback | None = None,
) -> list[Prediction]:
    """Greedy-generate a short answer for every item and parse it; predictions follow ``items`` order."""
    if max_new_tokens < 1:
        raise ConfigError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if parse_scope not in PARSE_SCOPES:
        raise ConfigError(
            f"unknown parse_scope '{parse_scope}'; valid parse scopes: {', '.join(PARSE_SCOPES)}"
        )
    prompts = [model.encode(model.format_prompt(item.text)) for item in items]
    detector = _LineEndDetector(model) if parse_scope == "first_line" else None
    predictions: list[Prediction | None] = [None] * len(items)
    groups = [(item.task, item.set_name) for item in items]
    batches = length_sorted_batches([len(prompt) for prompt in prompts], batch_size, groups)
    with tqdm(total=len(items), desc="generate", disable=not progress, mininterval=2.0, leave=False) as bar:
        for indices in batches:
            outputs = generate_batch(
                model, [prompts[i] for i in indices], max_new_tokens, detector,
                stop_at_line_end=detector is not None,
            )  # fmt: skip
            batch_predictions = []
            for index, tokens in zip(indices, outputs, strict=True):
                raw = model.decode(tokens)
                parsed = parse_answer(raw, items[index].words, parse_scope)
                extra = {
                    "n_tokens": len(tokens),
                    "first_line": [parsed.first_line_strict, parsed.first_line_lenient],
                }
                predictions[index] = Prediction(parsed.strict, parsed.lenient, raw=raw, extra=extra)
                batch_predictions.append(predictions[index])
            if on_batch is not None:
                on_batch(indices, batch_predictions)
            bar.update(len(indices))
    return [prediction for prediction in predictions if prediction is not None]
