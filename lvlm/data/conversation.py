"""Supervised token sequences from conversations, built turn by turn.

``turns_from_llava`` pairs LLaVA-format messages into (user, assistant) turns; ``encode_conversation``
renders the whole conversation with a chat template (``lvlm.templates``) and tokenizes it as one string —
exactly as the evaluators tokenize a prompt, so training and inference see the same ids for the same text
(a SentencePiece tokenizer such as Llama-2's would give a segment tokenized on its own an extra ``▁``).
Labels are then placed by character span: each answer's token range is the length of the tokenized text
before it to the length of the tokenized text through its EOS, and both prefixes must be prefixes of the
whole encoding (a template boundary inside a token raises). Everything else is ``IGNORE_INDEX``. Each
``<image>`` placeholder is expanded to the vision tower's number of patch tokens. Every supervised span is
decoded back and compared with its answer: a mismatch raises instead of silently training on wrong tokens.
See docs/model.md ("Templates").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from lvlm.constants import IGNORE_INDEX
from lvlm.errors import DataError
from lvlm.templates import ChatTemplate


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    labels: list[int]
    num_images: int


def turns_from_llava(conversations: list[dict], source: str, record: str | int) -> list[tuple[str, str]]:
    """Pair LLaVA ``{"from": "human"|"gpt", "value": ...}`` messages into (user, assistant) turns."""
    roles = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
    turns: list[tuple[str, str]] = []
    pending: str | None = None
    for index, message in enumerate(conversations):
        role = roles.get(str(message.get("from", "")).lower()) if isinstance(message, dict) else None
        value = message.get("value") if isinstance(message, dict) else None
        if role is None or not isinstance(value, str):
            fix = "each message needs 'from' (human|gpt) and a string 'value'"
            raise DataError(source, f"message {index} is malformed", fix, record)
        if role == "user":
            if pending is not None:
                raise DataError(
                    source, f"two user messages in a row at {index}", "alternate human/gpt", record
                )
            pending = value
        elif pending is None:
            raise DataError(
                source, f"assistant message {index} has no user turn before it", "start with human", record
            )
        else:
            turns.append((pending, value))
            pending = None
    if not turns:
        raise DataError(
            source, "conversation has no assistant turn", "add a 'gpt' answer or drop the record", record
        )
    return turns


def encode_conversation(
    tokenizer: PreTrainedTokenizerBase,
    template: ChatTemplate,
    turns: Sequence[tuple[str, str]],
    num_image_tokens: int,
    image_token_id: int,
    source: str = "<conversation>",
    record: str | int | None = None,
) -> Encoded:
    """Token ids of the whole rendered conversation; labels only on the answers' tokens and their EOS."""
    if template.style == "plain" and len(turns) != 1:
        raise DataError(
            source, f"the plain template takes one turn, got {len(turns)}", "use a chat template", record
        )
    rendered = template.render(turns, bos=str(tokenizer.bos_token), eos=str(tokenizer.eos_token))
    text = rendered.text
    bounds = sorted({bound for span in rendered.targets for bound in span})
    encoded = tokenizer([text, *(text[:bound] for bound in bounds)], add_special_tokens=False)["input_ids"]
    ids = list(encoded[0])
    prefix_lengths = {
        bound: _prefix_length(ids, list(prefix), bound, source, record)
        for bound, prefix in zip(bounds, encoded[1:], strict=True)
    }
    labels = [IGNORE_INDEX] * len(ids)
    for (start, end), (_, answer) in zip(rendered.targets, turns, strict=True):
        first, last = prefix_lengths[start], prefix_lengths[end]
        span = ids[first:last]
        if not span or span[-1] != tokenizer.eos_token_id:
            raise DataError(
                source, "an answer's tokens do not end in EOS", "check the tokenizer's eos_token", record
            )
        _check_round_trip(tokenizer, span[:-1], answer, source, record)
        if image_token_id in span:
            raise DataError(
                source, "an <image> placeholder is inside an answer", "move it to the question", record
            )
        labels[first:last] = span
    input_ids: list[int] = []
    expanded_labels: list[int] = []
    num_images = 0
    for tok, label in zip(ids, labels, strict=True):
        if tok == image_token_id:
            num_images += 1
            input_ids.extend([image_token_id] * num_image_tokens)
            expanded_labels.extend([IGNORE_INDEX] * num_image_tokens)
        else:
            input_ids.append(tok)
            expanded_labels.append(label)
    return Encoded(input_ids, expanded_labels, num_images)


def _prefix_length(
    ids: list[int], prefix: list[int], bound: int, source: str, record: str | int | None
) -> int:
    """How many of ``ids`` the text before character ``bound`` is; it must be a prefix of ``ids``."""
    if ids[: len(prefix)] != prefix:
        raise DataError(
            source,
            f"a template boundary (character {bound}) falls inside a token, so answer and prompt tokens "
            "cannot be told apart",
            "check the tokenizer and the chat template, or the whitespace around the answer",
            record,
        )
    return len(prefix)


def _check_round_trip(
    tokenizer: PreTrainedTokenizerBase, ids: list[int], text: str, source: str, record: str | int | None
) -> None:
    decoded = tokenizer.decode(ids, skip_special_tokens=False)
    if decoded.strip() != text.strip():
        problem = (
            f"assistant text does not round-trip through the tokenizer ({text[:40]!r} → {decoded[:40]!r})"
        )
        raise DataError(
            source, problem, "check the tokenizer or remove special-token text from answers", record
        )
