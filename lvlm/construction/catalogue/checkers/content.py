"""Checkers for instructions about an answer's wording: length, case, keywords, letters, start and end.

Semantics follow IFEval's documented checks ("less than" is strict, "at least" is inclusive, letters and
keywords are matched case-insensitively). Deliberate differences, following the instruction text rather
than IFEval's implementation: keyword existence and keyword frequency count whole words ("red" does not
match "colored" or "reds"; IFEval matches substrings, which is stricter for "less than"); capital words are
word-character runs rather than nltk tokens; the repeated request must be followed by an actual answer; the
English-language part of the lowercase/capitals instructions is not checked (IFEval uses ``langdetect``,
which also rejects many short English answers; the synthetic backend writes English only).
"""

from __future__ import annotations

from lvlm.construction.catalogue.checkers import text
from lvlm.construction.catalogue.checkers.base import CheckResult, failed, judge_count, passed, register

_COMMAS = (",", "，")


@register("length_constraints:number_sentences")
def check_sentences(params: dict, answer: str, request: str | None) -> CheckResult:
    found = text.count_sentences(answer)
    return judge_count("sentences", params["relation"], found, params["num_sentences"])


@register("length_constraints:number_words")
def check_words(params: dict, answer: str, request: str | None) -> CheckResult:
    return judge_count("words", params["relation"], text.count_words(answer), params["num_words"])


@register("change_case:english_lowercase")
def check_lowercase(params: dict, answer: str, request: str | None) -> CheckResult:
    if answer.islower():
        return passed("every letter is lowercase")
    offending = [ch for ch in answer if ch.isupper() or ch.istitle()]
    if not offending:
        return failed("the answer contains no letters")
    return failed(f"found {len(offending)} capital letters (first: '{offending[0]}')")


@register("change_case:english_capital")
def check_capitals(params: dict, answer: str, request: str | None) -> CheckResult:
    if answer.isupper():
        return passed("every letter is a capital")
    offending = [ch for ch in answer if ch.islower() or ch.istitle()]
    if not offending:
        return failed("the answer contains no letters")
    return failed(f"found {len(offending)} lowercase letters (first: '{offending[0]}')")


@register("change_case:capital_word_frequency")
def check_capital_words(params: dict, answer: str, request: str | None) -> CheckResult:
    found = len(text.capital_words(answer))
    return judge_count("all-capital words", params["capital_relation"], found, params["capital_frequency"])


@register("startend:end_checker")
def check_end_phrase(params: dict, answer: str, request: str | None) -> CheckResult:
    phrase = params["end_phrase"].strip()
    ending = answer.strip().strip('"').strip()
    if ending.lower().endswith(phrase.lower()):
        return passed(f"the answer ends with '{phrase}'")
    return failed(f"the answer ends with '{ending[-len(phrase) :]}', need '{phrase}'")


@register("startend:quotation")
def check_quotation(params: dict, answer: str, request: str | None) -> CheckResult:
    stripped = answer.strip()
    if len(stripped) > 1 and stripped[0] == '"' and stripped[-1] == '"':
        return passed("the answer is wrapped in double quotation marks")
    edges = f"'{stripped[:1]}' ... '{stripped[-1:]}'"
    return failed(f"the answer starts and ends with {edges}, need double quotation marks")


@register("punctuation:no_comma")
def check_no_comma(params: dict, answer: str, request: str | None) -> CheckResult:
    found = sum(answer.count(comma) for comma in _COMMAS)
    return CheckResult(found == 0, f"found {found} commas, need none")


@register("keywords:existence")
def check_keywords(params: dict, answer: str, request: str | None) -> CheckResult:
    missing = [word for word in params["keywords"] if text.count_word(answer, word) == 0]
    if missing:
        return failed("missing keywords: " + ", ".join(f"'{word}'" for word in missing))
    return passed("all keywords present")


@register("keywords:frequency")
def check_keyword_frequency(params: dict, answer: str, request: str | None) -> CheckResult:
    found = text.count_word(answer, params["keyword"])
    what = f"occurrences of the word '{params['keyword']}'"
    return judge_count(what, params["relation"], found, params["frequency"])


@register("keywords:forbidden_words")
def check_forbidden_words(params: dict, answer: str, request: str | None) -> CheckResult:
    present = [word for word in params["forbidden_words"] if text.count_word(answer, word) > 0]
    if present:
        return failed("found forbidden words: " + ", ".join(f"'{word}'" for word in present))
    return passed("no forbidden words")


@register("keywords:letter_frequency")
def check_letter_frequency(params: dict, answer: str, request: str | None) -> CheckResult:
    letter = params["letter"].lower()
    found = answer.lower().count(letter)
    return judge_count(f"letters '{letter}'", params["let_relation"], found, params["let_frequency"])


@register("combination:repeat_prompt")
def check_repeat_request(params: dict, answer: str, request: str | None) -> CheckResult:
    if request is None or not request.strip():
        return failed("no request text was given to compare the repetition with; pass request=...")
    wanted = request.strip()
    body = answer.strip()
    if not body.lower().startswith(wanted.lower()):
        return failed(f"the answer does not start with the request '{wanted[:60]}'")
    if not text.has_word(body[len(wanted) :]):
        return failed("nothing follows the repeated request")
    return passed("the answer repeats the request, then answers")
