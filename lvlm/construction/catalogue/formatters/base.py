"""Shared machinery of the formatters: content cleaning, neutral padding, grouping and word replacement.

A formatter turns a list of plain content units (sentences as ``checkers.text.split_sentences`` sees them)
into an answer that satisfies one instruction kind. ``clean_units`` strips Markdown-like characters that
could be mistaken for format markup (``*``, ``#``, ``<``, ``[``, leading dashes, line breaks) so that only
the formatter decides the layout. ``Padding`` hands out neutral filler sentences, first ones built from the
content's own words (colours, shapes, objects), then generic ones, when an instruction needs more text.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from lvlm.construction.catalogue.catalog import COLOURS, KEYWORD_VOCABULARY
from lvlm.construction.catalogue.checkers.text import has_word, split_sentences, word_pattern
from lvlm.errors import ConfigError
from lvlm.registry import Registry

GENERIC_PADDING = (
    "The scene is easy to take in at a glance.",
    "Every part of the picture is clearly visible.",
    "Nothing in the view looks hidden or unclear.",
    "The overall layout of the picture is simple.",
    "Each element stands apart from the background.",
    "The picture has a calm and orderly look.",
    "All of the visible details fit together well.",
    "This summary covers the main points of the picture.",
    "The arrangement makes the picture easy to describe.",
    "The lighting in the picture looks even.",
    "The main details are in plain view.",
    "There is nothing unusual about the rest of the picture.",
    "The picture gives a clear sense of the layout.",
    "Nothing else in the frame draws much attention.",
    "The background stays simple and uncluttered.",
    "These details sum up what can be seen.",
)
_MARKUP = re.compile(r"[*#`<>\[\]~_|]")
_VOCABULARY_WORD = re.compile(rf"(?<!\w)({'|'.join(KEYWORD_VOCABULARY)})(?!\w)", re.IGNORECASE)


@dataclass
class FormatContext:
    """What a formatter works from: the cleaned content units, the rng, the request and the padding."""

    units: list[str]
    rng: random.Random
    request: str | None
    padding: Padding

    @property
    def body(self) -> str:
        return " ".join(self.units)


Formatter = Callable[[dict, FormatContext], str]
FORMATTERS: Registry[Formatter] = Registry("format formatter")


def register(kind: str) -> Callable[[Formatter], Formatter]:
    """Decorator: register a formatter for ``kind``."""
    return FORMATTERS.register(kind)


def clean_sentence(sentence: str) -> str:
    """One line of plain prose ending in ``.``/``!``/``?``, or "" when nothing word-like is left."""
    text = _MARKUP.sub(" ", str(sentence))
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r"^[-•+\s]+", "", text)
    if not has_word(text):
        return ""
    if not re.search(r"[.!?][\"'”’)]*$", text):
        text = text.rstrip(",;: ") + "."
    return text


def clean_units(sentences: list[str]) -> list[str]:
    """Content sentences → cleaned units, re-split so that one unit is exactly one counted sentence."""
    cleaned = [clean_sentence(sentence) for sentence in sentences]
    return split_sentences(" ".join(part for part in cleaned if part))


class Padding:
    """Neutral filler sentences: content-derived ones first, then generic ones in a seeded order."""

    def __init__(self, units: list[str], rng: random.Random) -> None:
        self._content = " ".join(units)
        self._order = list(GENERIC_PADDING)
        rng.shuffle(self._order)  # drawn up front so the rng advances the same whether padding is used or not
        self._pool: list[str] | None = None
        self._next = 0

    @property
    def pool(self) -> list[str]:
        """Content-derived sentences (one per vocabulary word in the content), then the generic ones."""
        if self._pool is None:
            found = {word.lower() for word in _VOCABULARY_WORD.findall(self._content)}
            derived = [
                f"The {word} color is easy to spot." if word in COLOURS else f"The {word} is clearly visible."
                for word in KEYWORD_VOCABULARY
                if word in found
            ]
            self._pool = derived + self._order
        return self._pool

    def next(self, accept: Callable[[str], bool] = lambda sentence: True) -> str:
        """The next sentence in the pool that ``accept`` admits, cycling through the pool."""
        for _ in range(len(self.pool)):
            sentence = self.pool[self._next % len(self.pool)]
            self._next += 1
            if accept(sentence):
                return sentence
        raise ConfigError("formatter padding: no neutral sentence satisfies this instruction's constraint")


def fit(units: list[str], count: int, padding: Padding) -> list[str]:
    """Exactly ``count`` units: the first ones of ``units``, padded with neutral sentences when short."""
    return units[:count] + [padding.next() for _ in range(count - len(units))]


def group(units: list[str], parts: int) -> list[list[str]]:
    """Split ``units`` (at least ``parts`` of them) into ``parts`` consecutive non-empty groups."""
    size, extra = divmod(len(units), parts)
    groups, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        groups.append(units[start:end])
        start = end
    return groups


def and_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def substitute_for(word: str, avoid: list[str]) -> str:
    """A neutral stand-in for ``word`` that is none of the words in ``avoid``."""
    options = ("bright", "vivid", "colored") if word.lower() in COLOURS else ("object", "item", "thing")
    taken = {w.lower() for w in avoid} | {word.lower()}
    return next(option for option in options if option not in taken)


def replace_word(text: str, word: str, keep: int, avoid: list[str]) -> str:
    """Replace every whole-word occurrence of ``word`` after the first ``keep`` with a neutral stand-in."""
    stand_in = substitute_for(word, avoid)
    seen = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal seen
        seen += 1
        if seen <= keep:
            return match.group()
        return stand_in.capitalize() if match.group()[:1].isupper() else stand_in

    return word_pattern(word).sub(swap, text)
