"""Formatters for wording instructions: length, case, keywords, letters, commas, start and end phrases.

Each function builds an answer from ``ctx.units`` that the checker of the same kind accepts: it truncates
(whole sentences first, words only when a single sentence is already too long), pads with neutral
sentences, changes case, adds keyword mentions, or swaps words for neutral stand-ins.
"""

from __future__ import annotations

import re

from lvlm.construction.catalogue.catalog import KEYWORD_VOCABULARY
from lvlm.construction.catalogue.checkers.text import capital_words, count_word, count_words
from lvlm.construction.catalogue.formatters.base import FormatContext, and_list, fit, register, replace_word
from lvlm.errors import ConfigError

KEYWORD_MENTIONS = (
    'The word "{word}" fits this picture well.',
    'One could also describe it with the word "{word}".',
    'Here "{word}" is a fitting word.',
    'The word "{word}" comes to mind once more.',
)


@register("length_constraints:number_sentences")
def format_sentences(params: dict, ctx: FormatContext) -> str:
    wanted = params["num_sentences"]
    if params["relation"] == "less than":
        return " ".join(ctx.units[: max(1, wanted - 1)])
    return " ".join(fit(ctx.units, max(len(ctx.units), wanted), ctx.padding))


def _first_words(unit: str, limit: int) -> str:
    matches = list(re.finditer(r"\w+", unit))
    if len(matches) <= limit:
        return unit
    return unit[: matches[limit - 1].end()].rstrip(" ,;:") + "."


@register("length_constraints:number_words")
def format_words(params: dict, ctx: FormatContext) -> str:
    wanted = params["num_words"]
    units: list[str] = []
    if params["relation"] == "less than":
        for unit in ctx.units:
            if count_words(" ".join([*units, unit])) >= wanted:
                break
            units.append(unit)
        return " ".join(units) if units else _first_words(ctx.units[0], wanted - 1)
    units = list(ctx.units)
    while count_words(" ".join(units)) < wanted:
        units.append(ctx.padding.next())
    return " ".join(units)


@register("change_case:english_lowercase")
def format_lowercase(params: dict, ctx: FormatContext) -> str:
    text = ctx.body.lower()
    return text if text.islower() else f"{text} {ctx.padding.next().lower()}"


@register("change_case:english_capital")
def format_capitals(params: dict, ctx: FormatContext) -> str:
    text = ctx.body.upper()
    return text if text.isupper() else f"{text} {ctx.padding.next().upper()}"


def _lower_capitals_after(text: str, keep: int) -> str:
    seen = 0

    def swap(match: re.Match[str]) -> str:
        nonlocal seen
        if not match.group().isupper():
            return match.group()
        seen += 1
        return match.group() if seen <= keep else match.group().lower()

    return re.sub(r"\w+", swap, text)


def _raise_capitals(text: str, wanted: int, ctx: FormatContext) -> str:
    """Upper-case whole words (vocabulary words first) until ``wanted`` all-capital words exist."""
    while (missing := wanted - len(capital_words(text))) > 0:
        spans = [m for m in re.finditer(r"[^\W\d_]{3,}", text) if not m.group().isupper()]
        if len(spans) < missing:
            text = f"{text} {ctx.padding.next()}"
            continue
        chosen = sorted(spans, key=lambda m: (m.group().lower() not in KEYWORD_VOCABULARY, m.start()))
        for match in sorted(chosen[:missing], key=lambda m: m.start(), reverse=True):
            text = text[: match.start()] + match.group().upper() + text[match.end() :]
    return text


@register("change_case:capital_word_frequency")
def format_capital_words(params: dict, ctx: FormatContext) -> str:
    wanted = params["capital_frequency"]
    if params["capital_relation"] == "less than":
        return _lower_capitals_after(ctx.body, wanted - 1)
    return _raise_capitals(ctx.body, wanted, ctx)


@register("startend:end_checker")
def format_end_phrase(params: dict, ctx: FormatContext) -> str:
    return f"{ctx.body} {params['end_phrase'].strip()}"


@register("startend:quotation")
def format_quotation(params: dict, ctx: FormatContext) -> str:
    return f'"{ctx.body}"'


@register("punctuation:no_comma")
def format_no_comma(params: dict, ctx: FormatContext) -> str:
    return re.sub(r" {2,}", " ", re.sub(r"\s*[,，]\s*", " ", ctx.body)).strip()


@register("keywords:existence")
def format_keywords(params: dict, ctx: FormatContext) -> str:
    missing = [word for word in params["keywords"] if count_word(ctx.body, word) == 0]
    return f"{ctx.body} The picture brings to mind {and_list(missing)}." if missing else ctx.body


@register("keywords:frequency")
def format_keyword_frequency(params: dict, ctx: FormatContext) -> str:
    word, wanted = params["keyword"], params["frequency"]
    if params["relation"] == "less than":
        return replace_word(ctx.body, word, keep=wanted - 1, avoid=[word])
    missing = max(0, wanted - count_word(ctx.body, word))
    mentions = [KEYWORD_MENTIONS[i % len(KEYWORD_MENTIONS)].format(word=word) for i in range(missing)]
    return " ".join([ctx.body, *mentions])


@register("keywords:forbidden_words")
def format_forbidden_words(params: dict, ctx: FormatContext) -> str:
    text = ctx.body
    for word in params["forbidden_words"]:
        text = replace_word(text, word, keep=0, avoid=params["forbidden_words"])
    return text


@register("keywords:letter_frequency")
def format_letter_frequency(params: dict, ctx: FormatContext) -> str:
    letter, wanted = params["letter"].lower(), params["let_frequency"]
    if params["let_relation"] == "less than":
        kept, total = [], 0
        for unit in ctx.units:
            if total + unit.lower().count(letter) < wanted:
                kept.append(unit)
                total += unit.lower().count(letter)
        return " ".join(kept or [ctx.padding.next(lambda sentence: letter not in sentence.lower())])
    units = list(ctx.units)
    while " ".join(units).lower().count(letter) < wanted:
        units.append(ctx.padding.next(lambda sentence: letter in sentence.lower()))
    return " ".join(units)


@register("combination:repeat_prompt")
def format_repeat_request(params: dict, ctx: FormatContext) -> str:
    if ctx.request is None or not ctx.request.strip():
        raise ConfigError("apply_format: repeat_prompt needs the request text; fix: pass request=...")
    return f"{ctx.request.strip()}\n\n{ctx.body}"
