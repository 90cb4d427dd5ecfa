"""Parser that turns a generated answer into a label of the verbalizer benchmark (``docs/evaluation.md``).

``parse(output, words)`` returns ``(strict, lenient)``, each 0, 1 or ``INVALID``:

* Only the first non-blank line of the generation is read (a model that opens with an empty line still
  answers on the next one; everything after the answer line is ignored).
* Normalisation: Unicode NFKC, case-folding, internal whitespace collapsed, and any mix of surrounding
  whitespace, quotes of any kind (straight, curly, guillemets, backticks, CJK brackets) and final
  punctuation stripped repeatedly until nothing changes.
* *strict*: the normalised answer equals one verbalizer word (normalised the same way).
* *lenient*: the leftmost verbalizer word occurring as a whole word; at the same position the longest
  word wins, so "not duplicate" beats "duplicate" and "1" inside "10" does not match.

The parser never raises: anything it cannot read is ``INVALID``.
"""

from __future__ import annotations

import re
import unicodedata

from lvlm.eval.types import INVALID

QUOTE_CHARS = "\"'`´‘’‚‛“”„‟«»‹›「」『』〝〞＂＇"
FINAL_PUNCTUATION = ".,;:!?…。，；：！？"
_STRIP_CHARS = QUOTE_CHARS + FINAL_PUNCTUATION + " \t\r\n\f\v"
_WHITESPACE = re.compile(r"\s+")


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


def parse(output: str, words: tuple[str, str]) -> tuple[int, int]:
    """Parse a generation into ``(strict, lenient)`` labels for verbalizer ``words`` (label_0, label_1)."""
    try:
        normalized_words = (normalize(words[0]), normalize(words[1]))
        if not isinstance(output, str) or not all(normalized_words):
            return INVALID, INVALID
        answer = normalize(first_line(output))
        strict = _label_of(answer, normalized_words)
        match = _word_pattern(words).search(answer)
        lenient = _label_of(match.group(0), normalized_words) if match else INVALID
        return strict, lenient
    except Exception:  # the parser must never take an evaluation down
        return INVALID, INVALID
