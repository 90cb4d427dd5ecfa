"""Chat templates and supervised labels, built turn by turn.

A template turns a conversation (alternating user / assistant messages) into ``Segment``s: literal text,
BOS/EOS tokens, and whether the segment is a training target. ``encode_conversation`` tokenizes segment by
segment, expands each ``<image>`` placeholder to the vision tower's number of patch tokens, and marks
labels only on assistant segments (everything else is ``IGNORE_INDEX``). Every assistant segment is
decoded back and compared with its text: a mismatch raises instead of silently training on wrong tokens.

Templates: ``llava_llama_2`` (Llama-2-Chat with the LLaVA system prompt, SPEC §2), ``plain`` (stage-1
captioning: image tokens then the caption), ``vicuna_v1``, and ``llama_2`` (no system prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transformers import PreTrainedTokenizerBase

from lvlm.errors import DataError
from lvlm.registry import Registry

IGNORE_INDEX = -100
IMAGE_PLACEHOLDER = "<image>"
LLAVA_SYSTEM_PROMPT = (
    "You are a helpful language and vision assistant. You are able to understand the visual content that "
    "the user provides, and assist the user with a variety of tasks using natural language."
)
VICUNA_SYSTEM_PROMPT = (
    "A chat between a curious human and an artificial intelligence assistant. The assistant gives helpful, "
    "detailed, and polite answers to the human's questions."
)
LLAMA2_CHAT_JINJA = (
    "{%- set sys = messages[0]['content'] if messages and messages[0]['role'] == 'system' else none -%}"
    "{%- set turns = messages[1:] if sys is not none else messages -%}"
    "{%- for m in turns -%}"
    "{%- if m['role'] == 'user' -%}{{ bos_token }}[INST] "
    "{% if loop.first and sys is not none %}<<SYS>>\n{{ sys }}\n<</SYS>>\n\n{% endif %}"
    "{{ m['content'] }} [/INST]"
    "{%- elif m['role'] == 'assistant' -%}"
    "{% generation %} {{ m['content'] }} {{ eos_token }}{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
)


@dataclass(frozen=True)
class Segment:
    text: str = ""
    target: bool = False
    special: str | None = None  # "bos" | "eos" | None


@dataclass(frozen=True)
class ChatTemplate:
    """A named conversation format; ``style`` selects how turns are laid out."""

    name: str
    style: str  # "llama_2" | "plain" | "vicuna"
    system: str | None = None

    def segments(self, turns: Sequence[tuple[str, str]]) -> list[Segment]:
        """Segments for complete (user, assistant) turns."""
        out: list[Segment] = []
        for index, (user, assistant) in enumerate(turns):
            out.extend(self._user_segments(user, first=index == 0))
            out.extend(self._assistant_segments(assistant))
        return out

    def generation_prompt(self, user: str) -> str:
        """The text a model sees before it answers ``user`` (BOS written as text)."""
        parts = []
        for seg in self._user_segments(user, first=True):
            parts.append("<s>" if seg.special == "bos" else seg.text)
        return "".join(parts)

    def _user_segments(self, user: str, first: bool) -> list[Segment]:
        if self.style == "llama_2":
            header = f"<<SYS>>\n{self.system}\n<</SYS>>\n\n" if first and self.system else ""
            return [Segment(special="bos"), Segment(f"[INST] {header}{user} [/INST]")]
        if self.style == "vicuna":
            prefix = f"{self.system} " if first and self.system else ""
            bos = [Segment(special="bos")] if first else []
            return [*bos, Segment(f"{prefix}USER: {user} ASSISTANT:")]
        images = IMAGE_PLACEHOLDER * user.count(IMAGE_PLACEHOLDER)  # plain: the image only, as LLaVA stage 1
        return [Segment(special="bos"), Segment(images)] if first else [Segment(images)]

    def _assistant_segments(self, assistant: str) -> list[Segment]:
        if self.style == "llama_2":
            return [Segment(f" {assistant} ", target=True), Segment(target=True, special="eos")]
        if self.style == "vicuna":
            return [Segment(f" {assistant}", target=True), Segment(target=True, special="eos")]
        return [Segment(assistant, target=True), Segment(target=True, special="eos")]


TEMPLATES: Registry[ChatTemplate] = Registry("conversation template")
TEMPLATES.add("llava_llama_2", ChatTemplate("llava_llama_2", "llama_2", LLAVA_SYSTEM_PROMPT))
TEMPLATES.add("llama_2", ChatTemplate("llama_2", "llama_2", None))
TEMPLATES.add("plain", ChatTemplate("plain", "plain", None))
TEMPLATES.add("vicuna_v1", ChatTemplate("vicuna_v1", "vicuna", VICUNA_SYSTEM_PROMPT))


def get_template(name: str) -> ChatTemplate:
    return TEMPLATES.get(name)


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
