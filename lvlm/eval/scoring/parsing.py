"""Parser that turns a generated answer into a label of the verbalizer benchmark (``docs/evaluation.md``).

``parse(output, words, scope="answer")`` returns ``(strict, lenient)``, each 0, 1 or ``INVALID``:

* Scope: ``"answer"`` (the default) reads the whole generated answer, so a chat model that opens with
  "Sure! Here is my answer:" and gives the word on a later line is still read; ``"first_line"`` reads only
  the first non-blank line (a model that opens with an empty line still answers on the next one).
* Normalisation: Unicode NFKC, case-folding, runs of whitespace (line breaks included) collapsed to one
  space, and any mix of surrounding whitespace, quotes of any kind (straight, curly, guillemets, backticks,
  CJK brackets) and final punctuation stripped repeatedly until nothing changes.
* *strict*: the whole normalised text equals one verbalizer word (normalised the same way).
* *lenient* (the headline): the first verbalizer word that occurs as a whole word; at the same position the
  longest word wins, so "not duplicate" beats "duplicate" and "1" inside "10" or "bar" inside "barn" does
  not match.

``parse_answer`` also returns the first-line parse, so the results can count the answers that were found
only past the first line. The parser never raises: anything it cannot read is ``INVALID``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from lvlm.eval.types import INVALID

QUOTE_CHARS = "\"'`´‘’‚‛“”„‟«»‹›「」『』〝〞＂＇"
FINAL_PUNCTUATION = ".,;:!?…。，；：！？"
_STRIP_CHARS = QUOTE_CHARS + FINAL_PUNCTUATION + " \t\r\n\f\v"
_WHITESPACE = re.compile(r"\s+")
PARSE_SCOPES = ("answer", "first_line")


@dataclass(frozen=True)
class ParsedAnswer:
    """Labels of one answer in the requested scope, and the same parse of its first non-blank line."""

    strict: int
    lenient: int
    first_line_strict: int
    first_line_lenient: int

    def past_first_line(self, mode: str) -> bool:
        """True when the ``mode`` label was found only by reading past the first line."""
        label = getattr(self, mode)
        return label != INVALID and label != getattr(self, f"first_line_{mode}")


def first_line(output: str) -> str:
    """The first line of ``output`` that holds anything but whitespace ('' if none)."""
    for line in output.splitlines():
        if line.strip():
            return line
    return ""


def normalize(text: str) -> str:
    """Case-fold, collapse whitespace and strip surrounding quotes and final punctuation."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _WHITESPACE.sub(" ", text)
    previous = None
    while previous != text:
        previous = text
        text = text.strip(_STRIP_CHARS)
    return text


def _word_pattern(words: tuple[str, str]) -> re.Pattern[str]:
    """A regex matching either normalised word as a whole word, longer alternatives tried first."""
    ordered = sorted({normalize(w) for w in words if normalize(w)}, key=len, reverse=True)
    alternatives = "|".join(re.escape(w) for w in ordered)
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)")


def _label_of(match_text: str, normalized_words: tuple[str, str]) -> int:
    return normalized_words.index(match_text) if match_text in normalized_words else INVALID


def _labels(text: str, words: tuple[str, str], normalized_words: tuple[str, str]) -> tuple[int, int]:
    answer = normalize(text)
    strict = _label_of(answer, normalized_words)
    match = _word_pattern(words).search(answer)
    return strict, _label_of(match.group(0), normalized_words) if match else INVALID


def parse_answer(output: str, words: tuple[str, str], scope: str = "answer") -> ParsedAnswer:
    """Parse ``output`` in ``scope`` (``answer`` or ``first_line``) and, alongside, its first line alone."""
    try:
        normalized_words = (normalize(words[0]), normalize(words[1]))
        if not isinstance(output, str) or not all(normalized_words) or scope not in PARSE_SCOPES:
            return ParsedAnswer(INVALID, INVALID, INVALID, INVALID)
        first = _labels(first_line(output), words, normalized_words)
        labels = first if scope == "first_line" else _labels(output, words, normalized_words)
        return ParsedAnswer(*labels, *first)
    except Exception:  # the parser must never take an evaluation down
        return ParsedAnswer(INVALID, INVALID, INVALID, INVALID)


def parse(output: str, words: tuple[str, str], scope: str = "answer") -> tuple[int, int]:
    """Parse a generation into ``(strict, lenient)`` labels for verbalizer ``words`` (label_0, label_1)."""
    parsed = parse_answer(output, words, scope)
    return parsed.strict, parsed.lenient
