"""Checkers for instructions about an answer's layout: bullets, paragraphs, sections, JSON, title, ...

Semantics follow IFEval's documented checks. Where IFEval's implementation is looser than the instruction
text, these checkers follow the text: bullets need a list marker followed by a space; ``SECTION X`` needs
exactly the requested number of non-empty sections (IFEval accepts at least that many); JSON must be an
object or an array (IFEval also accepts a bare string or number); a postscript must start a line after some
answer text; placeholders need a word character inside the brackets.
"""

from __future__ import annotations

import re

from lvlm.construction.catalogue.checkers import text
from lvlm.construction.catalogue.checkers.base import (
    CheckResult,
    failed,
    judge_count,
    judge_exact,
    passed,
    register,
)


@register("detectable_format:number_bullet_lists")
def check_bullets(params: dict, answer: str, request: str | None) -> CheckResult:
    return judge_exact("bullets", len(text.bullet_lines(answer)), params["num_bullets"])


@register("length_constraints:number_paragraphs")
def check_divider_paragraphs(params: dict, answer: str, request: str | None) -> CheckResult:
    paragraphs, empty_at = text.divider_paragraphs(answer)
    if empty_at is not None:
        return failed(f"paragraph {empty_at} between *** dividers is empty")
    return judge_exact("paragraphs separated by ***", len(paragraphs), params["num_paragraphs"])


def _first_word(paragraph: str) -> str:
    first = paragraph.split()[0].lstrip("\"'“‘*#")
    return re.split(r"[^\w-]", first, maxsplit=1)[0].lower()


@register("length_constraints:nth_paragraph_first_word")
def check_nth_paragraph_first_word(params: dict, answer: str, request: str | None) -> CheckResult:
    paragraphs = text.blank_line_paragraphs(answer)
    count = judge_exact("paragraphs separated by blank lines", len(paragraphs), params["num_paragraphs"])
    if not count.ok:
        return count
    found = _first_word(paragraphs[params["nth_paragraph"] - 1])
    wanted = params["first_word"].lower()
    message = f"paragraph {params['nth_paragraph']} starts with '{found}', need '{wanted}'"
    return CheckResult(found == wanted, message)


@register("detectable_format:multiple_sections")
def check_sections(params: dict, answer: str, request: str | None) -> CheckResult:
    splitter = params["section_spliter"]
    markers = text.section_markers(answer, splitter)
    count = judge_exact(f"'{splitter} N' markers", len(markers), params["num_sections"])
    if not count.ok:
        return count
    ends = [marker.start() for marker in markers[1:]] + [len(answer)]
    for number, (marker, end) in enumerate(zip(markers, ends, strict=True), 1):
        if not text.has_word(answer[marker.end() : end]):
            return failed(f"section {number} ('{marker.group()}') is empty")
    return count


@register("detectable_format:number_highlighted_sections")
def check_highlights(params: dict, answer: str, request: str | None) -> CheckResult:
    return judge_count(
        "*highlighted* parts", "at least", len(text.highlights(answer)), params["num_highlights"]
    )


@register("detectable_format:json_format")
def check_json(params: dict, answer: str, request: str | None) -> CheckResult:
    ok, value = text.json_payload(answer)
    if not ok:
        return failed("the answer (outside an optional ```json fence) is not valid JSON")
    if not isinstance(value, dict | list):
        return failed(f"the JSON is a bare {type(value).__name__}, need an object or an array")
    return passed(f"the whole answer is a JSON {'object' if isinstance(value, dict) else 'array'}")


@register("detectable_format:title")
def check_title(params: dict, answer: str, request: str | None) -> CheckResult:
    found = text.titles(answer)
    if not found:
        return failed("found no title wrapped in << >>")
    return passed(f"found title <<{found[0]}>>")


@register("combination:two_responses")
def check_two_responses(params: dict, answer: str, request: str | None) -> CheckResult:
    pieces = text.trim_empty(answer.split("******"), str.strip)
    if any(not piece.strip() for piece in pieces):
        return failed("an empty response sits between ****** separators")
    if len(pieces) != 2:
        return failed(f"found {len(pieces)} responses separated by ******, need exactly 2")
    if pieces[0].strip() == pieces[1].strip():
        return failed("the two responses are identical")
    return passed("found 2 different responses separated by ******")


@register("detectable_content:number_placeholders")
def check_placeholders(params: dict, answer: str, request: str | None) -> CheckResult:
    found = len(text.placeholders(answer))
    return judge_count("[placeholders]", "at least", found, params["num_placeholders"])


def _postscript_pattern(marker: str) -> re.Pattern[str]:
    """``P.S.`` → "P.S." / "p. s."; ``P.P.S`` → "P.P.S" / "P.P.S."; at a line start, as its own token."""
    letters = [re.escape(ch) for ch in marker.rstrip(".").split(".")]
    final_dot = r"\." if marker.endswith(".") else r"\.?"
    body = r"\.\s?".join(letters) + final_dot
    return re.compile(r"^\s*" + body + r"(?=\s|:|$)", re.IGNORECASE | re.MULTILINE)


@register("detectable_content:postscript")
def check_postscript(params: dict, answer: str, request: str | None) -> CheckResult:
    marker = params["postscript_marker"]
    match = _postscript_pattern(marker).search(answer)
    if match is None:
        return failed(f"found no line starting with {marker}")
    if not text.has_word(answer[: match.start()]):
        return failed(f"the {marker} postscript is not preceded by an answer")
    if not text.has_word(answer[match.end() :]):
        return failed(f"the {marker} postscript is empty")
    return passed(f"found a postscript starting with {marker}")
