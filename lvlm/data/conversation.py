"""Supervised token sequences from conversations, built turn by turn.

``turns_from_llava`` pairs LLaVA-format messages into (user, assistant) turns; ``encode_conversation``
tokenizes the segments a chat template (``lvlm.templates``) lays out, expands each ``<image>`` placeholder
to the vision tower's number of patch tokens, and marks labels only on assistant segments (everything else
is ``IGNORE_INDEX``). Every assistant segment is decoded back and compared with its text: a mismatch raises
instead of silently training on wrong tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from lvlm.constants import IGNORE_INDEX
from lvlm.errors import DataError
from lvlm.templates import ChatTemplate, Segment


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
    """Token ids and labels for a conversation; labels only on assistant tokens."""
    if template.style == "plain" and len(turns) != 1:
        raise DataError(
            source, f"the plain template takes one turn, got {len(turns)}", "use a chat template", record
        )
    input_ids: list[int] = []
    labels: list[int] = []
    num_images = 0
    for seg in template.segments(turns):
        ids = _segment_ids(tokenizer, seg)
        if seg.target and seg.special is None:
            _check_round_trip(tokenizer, ids, seg.text, source, record)
        expanded: list[int] = []
        for tok in ids:
            if tok == image_token_id:
                num_images += 1
                expanded.extend([image_token_id] * num_image_tokens)
            else:
                expanded.append(tok)
        if seg.target and num_images and image_token_id in expanded:
            raise DataError(
                source, "an <image> placeholder is inside an answer", "move it to the question", record
            )
        input_ids.extend(expanded)
        labels.extend(expanded if seg.target else [IGNORE_INDEX] * len(expanded))
    return Encoded(input_ids, labels, num_images)


def _segment_ids(tokenizer: PreTrainedTokenizerBase, seg: Segment) -> list[int]:
    if seg.special == "bos":
        return [tokenizer.bos_token_id]
    if seg.special == "eos":
        return [tokenizer.eos_token_id]
    return tokenizer(seg.text, add_special_tokens=False)["input_ids"]


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
