"""Text measurements shared by the format checkers and the formatters.

One definition of "sentence", "word", "bullet", "paragraph", "highlight" and so on, so that an answer built
by a formatter is measured exactly as the checker measures it:

- word: a maximal run of word characters (``\\w+``), as IFEval counts words;
- sentence: text up to a terminator (``.``, ``!``, ``?``, possibly repeated and followed by closing quotes or
  brackets) that is followed by whitespace or the end, or up to a line break; a few common abbreviations
  ("Mr.", "e.g.", "etc.", ...) do not end a sentence; pieces with no word character are not sentences;
- bullet: a line whose first non-blank character is ``*`` or ``-`` followed by whitespace and text with a
  word character (so ``***`` dividers, ``*emphasis*`` and ``-5`` are not bullets);
- divider paragraphs: pieces between ``***`` markers; pieces with no word character are empty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

_TERMINATOR = re.compile(r"[.!?]+[\"'”’)\]*_]*(?=\s|$)")
_ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "inc", "ltd", "a.m", "p.m"}
)
_WORD = re.compile(r"\w+")
_HAS_WORD = re.compile(r"\w")
_BULLET = re.compile(r"^\s*[*-]\s+\S")
_HIGHLIGHT = re.compile(r"\*\*([^\n*]+)\*\*|(?<!\*)\*([^\n*]+)\*(?!\*)")
_PLACEHOLDER = re.compile(r"\[[^\[\]\n]*\w[^\[\]\n]*\]")
_TITLE = re.compile(r"<<([^\n<>]+)>>")
_FENCE = re.compile(r"```(?:json)?\s*(.*?)\s*```", re.DOTALL | re.IGNORECASE)


def has_word(text: str) -> bool:
    return bool(_HAS_WORD.search(text))


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def count_words(text: str) -> int:
    return len(_WORD.findall(text))


def _ends_in_abbreviation(before: str, terminator: str) -> bool:
    if terminator != "." or not before.strip():
        return False
    token = before.split()[-1].lstrip("(\"'“‘").lower()
    return token in _ABBREVIATIONS


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (see the module docstring for the rule), stripped."""
    sentences: list[str] = []
    for line in text.splitlines():
        start = 0
        for match in _TERMINATOR.finditer(line):
            if _ends_in_abbreviation(line[start : match.start()], match.group()):
                continue
            if has_word(line[start : match.end()]):
                sentences.append(line[start : match.end()].strip())
            start = match.end()
        if has_word(line[start:]):
            sentences.append(line[start:].strip())
    return sentences


def count_sentences(text: str) -> int:
    return len(split_sentences(text))


def word_pattern(word: str) -> re.Pattern[str]:
    """Case-insensitive whole-word pattern: ``red`` matches "Red" but not "colored" or "reds"."""
    return re.compile(rf"(?<!\w){re.escape(word.strip())}(?!\w)", re.IGNORECASE)


def count_word(text: str, word: str) -> int:
    return len(word_pattern(word).findall(text))


def bullet_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if _BULLET.match(line) and has_word(line)]


def divider_paragraphs(text: str) -> tuple[list[str], int | None]:
    """Paragraphs between ``***`` dividers and the 1-based position of the first empty inner one, if any.

    Empty pieces before the first or after the last divider are ignored, as IFEval does.
    """
    pieces = trim_empty(text.split("***"), has_word)
    for position, piece in enumerate(pieces, 1):
        if not has_word(piece):
            return [], position
    return [piece.strip() for piece in pieces], None


def trim_empty(pieces: list[str], keep: Callable[[str], bool]) -> list[str]:
    """``pieces`` without the leading and trailing pieces that ``keep`` rejects."""
    kept = [index for index, piece in enumerate(pieces) if keep(piece)]
    return pieces[kept[0] : kept[-1] + 1] if kept else []


def blank_line_paragraphs(text: str) -> list[str]:
    """Non-empty paragraphs separated by at least one blank line."""
    return [piece.strip() for piece in re.split(r"\n[ \t]*\n", text) if piece.strip()]


def highlights(text: str) -> list[str]:
    """Non-blank spans written as ``*text*`` or ``**text**`` on one line."""
    spans = (double or single for double, single in _HIGHLIGHT.findall(text))
    return [span for span in spans if span.strip()]


def placeholders(text: str) -> list[str]:
    return _PLACEHOLDER.findall(text)


def titles(text: str) -> list[str]:
    """Non-blank titles written as ``<<title>>`` on one line (no angle brackets inside the title)."""
    return [title for title in _TITLE.findall(text) if title.strip("<> ")]


def capital_words(text: str) -> list[str]:
    """Words whose letters are all capitals ("RED", "I", "TV2"); digits-only words do not count."""
    return [word for word in _WORD.findall(text) if word.isupper()]


def section_markers(text: str, splitter: str) -> list[re.Match[str]]:
    """Case-sensitive ``SPLITTER N`` markers (``SECTION 1``, ``PART 2``) not glued to a preceding letter."""
    return list(re.finditer(rf"(?<![A-Za-z]){re.escape(splitter)}\s?\d+", text))


def json_payload(text: str) -> tuple[bool, object]:
    """(True, value) when the whole text, optionally inside a ```json fence, parses as JSON."""
    stripped = text.strip()
    fenced = _FENCE.fullmatch(stripped)
    body = fenced.group(1) if fenced else stripped
    try:
        return True, json.loads(body)
    except (json.JSONDecodeError, RecursionError):
        return False, None
