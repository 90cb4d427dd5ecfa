"""Tests of the verbalizer answer parser (lvlm.eval.scoring.parsing) on a table of tricky generations."""

from __future__ import annotations

import pytest

from lvlm.eval.scoring.parsing import first_line, normalize, parse
from lvlm.eval.types import INVALID

SENTIMENT = ("positive", "negative")
QQP = ("duplicate", "not duplicate")
RTE = ("entailment", "not entailment")
DIGITS = ("1", "0")
UNNATURAL_DIGITS = ("0", "1")

CASES = [
    # (generation, words, strict, lenient)
    ("positive", SENTIMENT, 0, 0),
    ("Negative", SENTIMENT, 1, 1),
    ("  POSITIVE  ", SENTIMENT, 0, 0),
    ('"positive"', SENTIMENT, 0, 0),
    ("'negative'", SENTIMENT, 1, 1),
    ("“positive”", SENTIMENT, 0, 0),
    ("‘negative’", SENTIMENT, 1, 1),
    ("«positive»", SENTIMENT, 0, 0),
    ("`negative`", SENTIMENT, 1, 1),
    ("positive.", SENTIMENT, 0, 0),
    ('"Negative."', SENTIMENT, 1, 1),
    ('"positive".', SENTIMENT, 0, 0),
    ("negative!", SENTIMENT, 1, 1),
    ("Answer: positive", SENTIMENT, INVALID, 0),
    ("The review is negative.", SENTIMENT, INVALID, 1),
    ('Sure! The answer is "negative"', SENTIMENT, INVALID, 1),
    ("positively", SENTIMENT, INVALID, INVALID),
    ("nonnegative", SENTIMENT, INVALID, INVALID),
    ("negative, not positive", SENTIMENT, INVALID, 1),
    ("not duplicate", QQP, 1, 1),
    ("Not Duplicate.", QQP, 1, 1),
    ("duplicate", QQP, 0, 0),
    ("The questions are not duplicate", QQP, INVALID, 1),
    ("It is a duplicate.", QQP, INVALID, 0),
    ("not  duplicate", QQP, 1, 1),
    ("not entailment", RTE, 1, 1),
    ("not_entailment", RTE, INVALID, INVALID),
    ("10", DIGITS, INVALID, INVALID),
    ("100%", DIGITS, INVALID, INVALID),
    ("1", DIGITS, 0, 0),
    ("1.", DIGITS, 0, 0),
    ("0", DIGITS, 1, 1),
    ("Answer: 1", DIGITS, INVALID, 0),
    ("10 or 0", DIGITS, INVALID, 1),
    ("0", UNNATURAL_DIGITS, 0, 0),
    ("", SENTIMENT, INVALID, INVALID),
    ("   \n  ", SENTIMENT, INVALID, INVALID),
    ("...", SENTIMENT, INVALID, INVALID),
    ("positive\nnegative", SENTIMENT, 0, 0),
    ("I think\nnegative", SENTIMENT, INVALID, INVALID),
    ("\n\nnegative\nExplanation: it is positive", SENTIMENT, 1, 1),
    ("positive\r\nnegative", SENTIMENT, 0, 0),
    ("foo", ("foo", "bar"), 0, 0),
    ("Bar", ("foo", "bar"), 1, 1),
    ("foobar", ("foo", "bar"), INVALID, INVALID),
    ("lax.", ("sfo", "lax"), 1, 1),
    ("Yes", ("yes", "no"), 0, 0),
    ("No, it does not.", ("yes", "no"), INVALID, 1),
    ("river", ("lake", "river"), 1, 1),
]


@pytest.mark.parametrize(("output", "words", "strict", "lenient"), CASES)
def test_parse_table(output: str, words: tuple[str, str], strict: int, lenient: int) -> None:
    """The table reads the first line only (``scope="first_line"``); single-line answers parse the same way
    in the default whole-answer scope (multi-line answers: tests/eval/test_parser_headline.py)."""
    assert parse(output, words, scope="first_line") == (strict, lenient)
    if "\n" not in output.strip() and "\r" not in output.strip():
        assert parse(output, words) == (strict, lenient)


def test_longest_word_wins_regardless_of_word_order() -> None:
    assert parse("not duplicate", ("not duplicate", "duplicate")) == (0, 0)
    assert parse("they are not duplicate", ("not duplicate", "duplicate"))[1] == 0


def test_normalize_strips_nested_quotes_and_punctuation() -> None:
    assert normalize(' "«Positive»." ') == "positive"
    assert normalize("Not\tDuplicate!?") == "not duplicate"


def test_first_line_skips_blank_lines() -> None:
    assert first_line("\n \nanswer\nmore") == "answer"
    assert first_line("") == ""


@pytest.mark.parametrize("bad", [None, 12, b"positive"])
def test_parse_never_raises_on_garbage(bad: object) -> None:
    assert parse(bad, SENTIMENT) == (INVALID, INVALID)  # type: ignore[arg-type]


def test_parse_handles_regex_special_words() -> None:
    assert parse("a+b", ("a+b", "c.d")) == (0, 0)
    assert parse("cxd", ("a+b", "c.d")) == (INVALID, INVALID)
