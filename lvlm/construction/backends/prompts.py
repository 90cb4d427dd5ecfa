"""Prompt templates for the LLM construction backends (GPT-4V / GPT-4 or any compatible chat model).

Three generators, one template pair (system + user) each, as described in ``docs/construction.md``:

* caption: image → a dense, factual caption (vision model);
* question + answer: caption + one output-format instruction → a question about the image and an answer
  that obeys the instruction, returned between ``<question>`` / ``<answer>`` tags;
* answer: caption + question → a plain answer with no format constraint.

A regeneration after a failed format check appends the model's previous reply and ``CORRECTION`` (which
carries the checker's reason), so the retried request differs from the first and is not served from the
request cache. ``prompt_set()`` returns every template verbatim for the dataset cards.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CAPTION_SYSTEM = (
    "You describe photographs for people who cannot see them. Write only what is visible; never guess "
    "names, brands or events that the picture does not show."
)
CAPTION_USER = (
    "Write one paragraph of 3 to 6 sentences describing this image: the main subjects and what they are "
    "doing, their counts, colours and relative positions, the setting, and any readable text. Plain "
    "prose, no lists, no preamble."
)

QA_SYSTEM = (
    "You write training data for a visual assistant. You receive a caption that stands in for an image "
    "and an output-format instruction. You invent one question a user could ask about the image and write "
    "the assistant's answer. The question must be answerable from the image alone; the answer must be "
    "correct according to the caption and must follow the output-format instruction exactly."
)
QA_USER = (
    "Caption of the image:\n{caption}\n\n"
    "Output-format instruction the answer must obey:\n{instruction}\n\n"
    "Do not mention the caption, the instruction or that you cannot see the image. The question must not "
    "repeat the format instruction. Reply with exactly two tagged parts and nothing else:\n"
    "<question>the question</question>\n<answer>the answer, obeying the instruction</answer>"
)

ANSWER_SYSTEM = (
    "You are a helpful visual assistant. A caption stands in for the image the user is looking at. Answer "
    "as if you could see the image yourself."
)
ANSWER_USER = (
    "Caption of the image:\n{caption}\n\nQuestion: {question}\n\n"
    "Answer the question naturally and accurately in plain prose. Do not mention the caption."
)

CORRECTION = (
    "Your answer did not follow the output-format instruction: {reason}. Rewrite it so that it does, keep "
    "the same question, and reply again with the <question> and <answer> tags only."
)

_TAG_PATTERNS = {
    "question": re.compile(r"<question>\s*(.*?)\s*</question>", re.DOTALL | re.IGNORECASE),
    "answer": re.compile(r"<answer>\s*(.*)\s*</answer>", re.DOTALL | re.IGNORECASE),
}


@dataclass(frozen=True)
class TaggedReply:
    question: str
    answer: str


def parse_tagged_reply(text: str) -> TaggedReply | None:
    """Extract question and answer from a ``<question>…</question><answer>…</answer>`` reply.

    Returns ``None`` when either tag is missing, so the caller can regenerate.
    """
    question = _TAG_PATTERNS["question"].search(text)
    answer = _TAG_PATTERNS["answer"].search(text)
    if question is None or answer is None:
        return None
    return TaggedReply(question.group(1).strip(), answer.group(1).strip())


def prompt_set() -> dict[str, str]:
    """Every template, verbatim, keyed by role; recorded in the dataset cards."""
    return {
        "caption_system": CAPTION_SYSTEM,
        "caption_user": CAPTION_USER,
        "qa_system": QA_SYSTEM,
        "qa_user": QA_USER,
        "answer_system": ANSWER_SYSTEM,
        "answer_user": ANSWER_USER,
        "correction": CORRECTION,
    }
