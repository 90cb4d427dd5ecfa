"""Chat templates: how a conversation is laid out as text around each model's turns.

A ``ChatTemplate`` turns complete (user, assistant) turns into ``Segment``s: literal text, BOS/EOS tokens,
and whether the segment is a training target. ``render`` joins them into the one string a conversation is
tokenized as, with the character spans of its training targets; ``generation_prompt`` gives the text a
model sees before it answers — exactly the rendered conversation up to the first answer. Training
(``lvlm.data.conversation``) and evaluation (``lvlm.eval``) both tokenize these whole strings, so the same
text gets the same token ids in both (docs/model.md, "Templates"). The module depends on nothing but
constants and the registry.

Templates: ``llava_llama_2`` (Llama-2-Chat with the LLaVA system prompt; see docs/model.md), ``plain``
(stage-1 captioning: image tokens then the caption), ``vicuna_v1``, and ``llama_2`` (no system prompt).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lvlm.constants import IMAGE_TOKEN
from lvlm.registry import Registry

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
class Rendered:
    """A conversation as one string, and the ``[start, end)`` character span of each turn's target
    (the assistant's answer with its EOS)."""

    text: str
    targets: list[tuple[int, int]]


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

    def render(self, turns: Sequence[tuple[str, str]], bos: str = "<s>", eos: str = "</s>") -> Rendered:
        """The conversation as text (BOS/EOS written as ``bos``/``eos``) and one target span per turn."""
        parts: list[str] = []
        targets: list[tuple[int, int]] = []
        position = 0
        for seg in self.segments(turns):
            text = bos if seg.special == "bos" else eos if seg.special == "eos" else seg.text
            if seg.target:
                if targets and targets[-1][1] == position:
                    targets[-1] = (targets[-1][0], position + len(text))
                else:
                    targets.append((position, position + len(text)))
            parts.append(text)
            position += len(text)
        return Rendered("".join(parts), targets)

    def generation_prompt(self, user: str, bos: str = "<s>") -> str:
        """The text a model sees before it answers ``user``: ``render`` up to the first answer."""
        segments = self._user_segments(user, first=True)
        return "".join(bos if seg.special == "bos" else seg.text for seg in segments)

    def _user_segments(self, user: str, first: bool) -> list[Segment]:
        if self.style == "llama_2":
            header = f"<<SYS>>\n{self.system}\n<</SYS>>\n\n" if first and self.system else ""
            return [Segment(special="bos"), Segment(f"[INST] {header}{user} [/INST]")]
        if self.style == "vicuna":
            prefix = f"{self.system} " if first and self.system else ""
            bos = [Segment(special="bos")] if first else []
            return [*bos, Segment(f"{prefix}USER: {user} ASSISTANT:")]
        images = IMAGE_TOKEN * user.count(IMAGE_TOKEN)  # plain: the image only, as LLaVA stage 1
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
