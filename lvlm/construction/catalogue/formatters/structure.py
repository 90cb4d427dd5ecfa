"""Formatters for layout instructions: bullets, paragraphs, sections, highlights, JSON, title, and so on.

Each function builds an answer from ``ctx.units`` that the checker of the same kind accepts, padding with
neutral sentences when the layout needs more units than the content has.
"""

from __future__ import annotations

import json
import re

from lvlm.construction.catalogue.catalog import COLOURS, SHAPES
from lvlm.construction.catalogue.formatters.base import FormatContext, and_list, fit, group, register

GENERIC_TITLES = ("What the Picture Shows", "A Short Description", "Scene Overview", "A Look at the Picture")
PLACEHOLDER_NAMES = ("location", "time", "name", "date", "detail", "source", "camera", "note")


def _groups(ctx: FormatContext, parts: int) -> list[str]:
    units = fit(ctx.units, max(len(ctx.units), parts), ctx.padding)
    return [" ".join(chunk) for chunk in group(units, parts)]


@register("detectable_format:number_bullet_lists")
def format_bullets(params: dict, ctx: FormatContext) -> str:
    return "\n".join(f"* {unit}" for unit in fit(ctx.units, params["num_bullets"], ctx.padding))


@register("length_constraints:number_paragraphs")
def format_divider_paragraphs(params: dict, ctx: FormatContext) -> str:
    return "\n\n***\n\n".join(_groups(ctx, params["num_paragraphs"]))


def _lead_with(word: str, paragraph: str) -> str:
    first = paragraph.split()[0]
    keep_case = first == "I" or first.isupper() or not first[1:].islower()
    rest = paragraph if keep_case else paragraph[0].lower() + paragraph[1:]
    return f"{word.capitalize()}, {rest}"


@register("length_constraints:nth_paragraph_first_word")
def format_nth_paragraph_first_word(params: dict, ctx: FormatContext) -> str:
    paragraphs = _groups(ctx, params["num_paragraphs"])
    nth = params["nth_paragraph"] - 1
    paragraphs[nth] = _lead_with(params["first_word"], paragraphs[nth])
    return "\n\n".join(paragraphs)


@register("detectable_format:multiple_sections")
def format_sections(params: dict, ctx: FormatContext) -> str:
    splitter = params["section_spliter"]
    stray_marker = re.compile(rf"(?<![A-Za-z]){re.escape(splitter)}(?=\s?\d)")
    bodies = [stray_marker.sub(splitter.capitalize(), body) for body in _groups(ctx, params["num_sections"])]
    return "\n\n".join(f"{splitter} {number}\n{body}" for number, body in enumerate(bodies, 1))


@register("detectable_format:number_highlighted_sections")
def format_highlights(params: dict, ctx: FormatContext) -> str:
    wanted = params["num_highlights"]
    units = fit(ctx.units, max(len(ctx.units), wanted), ctx.padding)
    return " ".join(f"*{unit}*" if index < wanted else unit for index, unit in enumerate(units))


@register("detectable_format:json_format")
def format_json(params: dict, ctx: FormatContext) -> str:
    payload = {"answer": ctx.body} if ctx.rng.random() < 0.5 else {"points": list(ctx.units)}
    dumped = json.dumps(payload, indent=2, ensure_ascii=False)
    return f"```json\n{dumped}\n```" if ctx.rng.random() < 0.5 else dumped


def _title(ctx: FormatContext) -> str:
    pairs = re.search(rf"\b({'|'.join(COLOURS)}) ({'|'.join(SHAPES)})\b", ctx.body, re.IGNORECASE)
    if pairs:
        return f"The {pairs.group(1).capitalize()} {pairs.group(2).capitalize()}"
    return ctx.rng.choice(GENERIC_TITLES)


@register("detectable_format:title")
def format_title(params: dict, ctx: FormatContext) -> str:
    return f"<<{_title(ctx)}>>\n\n{ctx.body}"


@register("combination:two_responses")
def format_two_responses(params: dict, ctx: FormatContext) -> str:
    first = ctx.body
    second = " ".join(reversed(ctx.units))
    if second == first:
        second = " ".join([*ctx.units, ctx.padding.next()])
    return f"{first}\n\n******\n\n{second}"


@register("detectable_content:number_placeholders")
def format_placeholders(params: dict, ctx: FormatContext) -> str:
    wanted = params["num_placeholders"]
    if wanted <= len(PLACEHOLDER_NAMES):
        names = ctx.rng.sample(PLACEHOLDER_NAMES, wanted)
    else:
        names = [f"detail {number}" for number in range(1, wanted + 1)]
    return f"{ctx.body} Further details can be added as {and_list([f'[{name}]' for name in names])}."


@register("detectable_content:postscript")
def format_postscript(params: dict, ctx: FormatContext) -> str:
    marker = params["postscript_marker"].rstrip(".") + "."
    return f"{ctx.body}\n\n{marker} {ctx.padding.next()}"
