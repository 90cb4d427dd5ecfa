"""Catalog of the verifiable output-format instruction kinds (IFEval's types) and their parameter grids.

Each ``KindSpec`` names one IFEval instruction type (``kind``, e.g. ``"detectable_format:title"``), the
sentence templates shown to a model, and every parameter combination the library may sample from. Parameter
names follow IFEval's ``build_description`` keyword arguments (including its ``section_spliter`` spelling)
so a library entry can also be fed to IFEval's own checkers where those run. ``catalogue.instructions``
samples the library from this catalog; the checkers and formatters are keyed by ``kind``.

Two IFEval types are left out: ``language:response_language`` (the offline synthetic backend writes English
only, so only a trivial "answer in English" variant would be satisfiable) and
``detectable_format:constrained_response`` (a fixed yes/no/maybe reply does not fit descriptive questions).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

from lvlm.registry import Registry

RELATIONS = ("less than", "at least")

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "white", "black", "gray", "brown", "pink")
SHAPES = ("circle", "square", "triangle", "star", "rectangle", "oval")
EVERYDAY_WORDS = (
    "table", "chair", "window", "door", "lamp", "book", "cup", "tree",
    "road", "wall", "cloud", "garden", "bottle", "clock", "basket", "bench",
)  # fmt: skip
KEYWORD_VOCABULARY = COLOURS + SHAPES + EVERYDAY_WORDS
END_PHRASES = (
    "Is there anything else I can help with?",
    "Any other questions?",
    "Let me know if you need more details.",
    "That is all I can see.",
    "I hope this description helps.",
    "Thank you for asking.",
)
PARAGRAPH_FIRST_WORDS = ("overall", "additionally", "notably", "finally", "also", "here", "meanwhile")
RARE_LETTERS = ("j", "q", "x", "z")
COMMON_LETTERS = ("a", "e", "i", "o", "n", "r", "s", "t", "l")


@dataclass(frozen=True)
class KindSpec:
    """One IFEval instruction type: how to phrase it, its parameter grid and its id scheme."""

    kind: str
    templates: tuple[str, ...]
    grid: Callable[[], list[dict]]
    id_of: Callable[[dict], str]
    render: Callable[[dict], dict] = dict
    stratify: str | None = None  # parameter whose values the sampler alternates between

    @property
    def param_keys(self) -> frozenset[str]:
        grid = self.grid()
        return frozenset(grid[0]) if grid else frozenset()


def _quoted_list(words: list[str]) -> str:
    quoted = [f'"{word}"' for word in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]


def _plural(count: int, noun: str) -> str:
    return noun if count == 1 else noun + "s"


def _slug(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text.lower()).strip("_").replace("__", "_")


def _relation_grid(key: str, count_key: str, low: tuple[int, ...], high: tuple[int, ...]) -> list[dict]:
    return [{count_key: n, key: "less than"} for n in low] + [{count_key: n, key: "at least"} for n in high]


def _fixed(*templates: str, kind: str, slug: str) -> KindSpec:
    return KindSpec(kind, templates, lambda: [{}], lambda p, s=slug: s)


def _keyword_frequency_grid() -> list[dict]:
    at_least = [
        {"keyword": w, "frequency": n, "relation": "at least"} for w in KEYWORD_VOCABULARY for n in (2, 3, 4)
    ]
    less = [{"keyword": w, "frequency": n, "relation": "less than"} for w in EVERYDAY_WORDS for n in (2, 3)]
    return less + at_least


def _letter_grid() -> list[dict]:
    less = [
        {"letter": c, "let_frequency": n, "let_relation": "less than"}
        for c in RARE_LETTERS
        for n in (2, 3, 4)
    ]
    more = [
        {"letter": c, "let_frequency": n, "let_relation": "at least"}
        for c in COMMON_LETTERS
        for n in (5, 8, 10, 12, 15)
    ]
    return less + more


def _first_word_grid() -> list[dict]:
    return [
        {"num_paragraphs": n, "nth_paragraph": k, "first_word": w}
        for n in (2, 3, 4)
        for k in range(1, n + 1)
        for w in PARAGRAPH_FIRST_WORDS
    ]


def _rel(params: dict, key: str) -> str:
    return params[key].replace(" ", "_")


KIND_SPECS: tuple[KindSpec, ...] = (
    KindSpec(
        "detectable_format:number_bullet_lists",
        (
            "Your answer must contain exactly {num_bullets} bullet points in Markdown using the following "
            "format: * Bullet point one.",
        ),
        lambda: [{"num_bullets": n} for n in range(2, 8)],
        lambda p: f"bullets_exact_{p['num_bullets']}",
    ),
    KindSpec(
        "length_constraints:number_sentences",
        ("Your answer must be written in {relation} {num_sentences} sentences.",),
        lambda: _relation_grid("relation", "num_sentences", (2, 3, 4, 5, 6, 7), (2, 3, 4, 5, 6, 7, 8)),
        lambda p: f"sentences_{_rel(p, 'relation')}_{p['num_sentences']}",
        stratify="relation",
    ),
    KindSpec(
        "length_constraints:number_paragraphs",
        (
            "Your answer must have exactly {num_paragraphs} paragraphs, separated from each other by the "
            "Markdown divider ***.",
        ),
        lambda: [{"num_paragraphs": n} for n in range(2, 7)],
        lambda p: f"paragraphs_exact_{p['num_paragraphs']}",
    ),
    KindSpec(
        "length_constraints:number_words",
        ("Your answer must contain {relation} {num_words} words.",),
        lambda: _relation_grid("relation", "num_words", (20, 30, 40, 50, 60, 80), (30, 40, 50, 60, 80, 100)),
        lambda p: f"words_{_rel(p, 'relation')}_{p['num_words']}",
        stratify="relation",
    ),
    KindSpec(
        "length_constraints:nth_paragraph_first_word",
        (
            "Your answer must have exactly {num_paragraphs} paragraphs, separated from each other by one "
            'blank line. Paragraph {nth_paragraph} must start with the word "{first_word}".',
        ),
        _first_word_grid,
        lambda p: f"paragraph_{p['nth_paragraph']}_of_{p['num_paragraphs']}_starts_{p['first_word']}",
    ),
    _fixed(
        "Format your entire output as JSON. You may wrap it in a ```json code block.",
        "Your whole answer must be valid JSON, optionally inside Markdown code fences.",
        "Reply with a JSON object only, with no text outside the JSON.",
        "Wrap the entire response in JSON format; write nothing before or after the JSON.",
        kind="detectable_format:json_format",
        slug="json",
    ),
    _fixed(
        "Give your answer a title wrapped in double angular brackets, such as <<a sunny afternoon>>.",
        "Your answer must include a title in double angular brackets, for example <<the blue door>>.",
        "Include a title for your answer, written inside double angular brackets like <<quiet morning>>.",
        "Add a title to your answer and wrap it in double angular brackets, e.g. <<shapes and colors>>.",
        kind="detectable_format:title",
        slug="title",
    ),
    KindSpec(
        "detectable_format:number_highlighted_sections",
        (
            "Highlight at least {num_highlights} {parts} of your answer with Markdown, for example "
            "*highlighted part*.",
        ),
        lambda: [{"num_highlights": n} for n in range(1, 7)],
        lambda p: f"highlights_at_least_{p['num_highlights']}",
        render=lambda p: {"parts": _plural(p["num_highlights"], "part")},
    ),
    KindSpec(
        "detectable_format:multiple_sections",
        (
            "Your answer must have {num_sections} sections. Mark the beginning of each section with "
            "{section_spliter} X, such as: {section_spliter} 1.",
        ),
        lambda: [{"section_spliter": s, "num_sections": n} for s in ("SECTION", "PART") for n in range(2, 6)],
        lambda p: f"sections_{p['section_spliter'].lower()}_{p['num_sections']}",
        stratify="section_spliter",
    ),
    _fixed(
        "Your entire answer must be in English and in lowercase letters only; no capitals are allowed.",
        "Write your whole answer in English using only lowercase letters.",
        "Answer in English, and make sure every letter in your answer is lowercase.",
        "Do not use any capital letters: your entire English answer must be in lowercase.",
        kind="change_case:english_lowercase",
        slug="lowercase",
    ),
    _fixed(
        "Your entire answer must be in English and in capital letters only.",
        "Write your whole answer in English using only capital letters.",
        "Answer in English, and make sure every letter in your answer is uppercase.",
        "Do not use any lowercase letters: your entire English answer must be in capitals.",
        kind="change_case:english_capital",
        slug="capitals",
    ),
    KindSpec(
        "change_case:capital_word_frequency",
        (
            "In your answer, words written entirely in capital letters must appear {capital_relation} "
            "{capital_frequency} times.",
        ),
        lambda: _relation_grid("capital_relation", "capital_frequency", (3, 4, 5, 6), (2, 3, 4, 5, 6)),
        lambda p: f"capital_words_{_rel(p, 'capital_relation')}_{p['capital_frequency']}",
        stratify="capital_relation",
    ),
    KindSpec(
        "startend:end_checker",
        ('Finish your answer with the exact phrase "{end_phrase}" No other words may follow it.',),
        lambda: [{"end_phrase": phrase} for phrase in END_PHRASES],
        lambda p: f"end_with_{_slug(p['end_phrase'])}",
    ),
    KindSpec(
        "detectable_content:postscript",
        (
            "At the end of your answer, add a postscript starting with {postscript_marker}",
            "End your answer with a postscript that begins with {postscript_marker}",
            "After your main answer, write a postscript starting with {postscript_marker}",
        ),
        lambda: [{"postscript_marker": marker} for marker in ("P.S.", "P.P.S")],
        lambda p: "postscript_" + _slug(p["postscript_marker"]),
        stratify="postscript_marker",
    ),
    KindSpec(
        "keywords:existence",
        ("Include the keywords {keywords} in your answer.",),
        lambda: [{"keywords": list(pair)} for pair in itertools.combinations(KEYWORD_VOCABULARY, 2)],
        lambda p: "keywords_" + "_".join(p["keywords"]),
        render=lambda p: {"keywords": _quoted_list(p["keywords"])},
    ),
    KindSpec(
        "keywords:frequency",
        ('In your answer, the word "{keyword}" must appear {relation} {frequency} times.',),
        _keyword_frequency_grid,
        lambda p: f"keyword_{p['keyword']}_{_rel(p, 'relation')}_{p['frequency']}",
        stratify="relation",
    ),
    KindSpec(
        "keywords:forbidden_words",
        ("Do not include the words {forbidden_words} in your answer.",),
        lambda: [{"forbidden_words": list(pair)} for pair in itertools.combinations(EVERYDAY_WORDS, 2)],
        lambda p: "forbidden_" + "_".join(p["forbidden_words"]),
        render=lambda p: {"forbidden_words": _quoted_list(p["forbidden_words"])},
    ),
    KindSpec(
        "keywords:letter_frequency",
        ('In your answer, the letter "{letter}" must appear {let_relation} {let_frequency} times.',),
        _letter_grid,
        lambda p: f"letter_{p['letter']}_{_rel(p, 'let_relation')}_{p['let_frequency']}",
        stratify="let_relation",
    ),
    _fixed(
        "Wrap your entire answer in double quotation marks.",
        "Put your whole answer inside double quotation marks.",
        'Your answer must begin and end with a double quotation mark (").',
        "Enclose the entire response in double quotes.",
        kind="startend:quotation",
        slug="quotation",
    ),
    _fixed(
        "Do not use any commas anywhere in your answer.",
        "Your answer must not contain a single comma.",
        "Write your answer without using commas.",
        "Avoid commas entirely in your response.",
        kind="punctuation:no_comma",
        slug="no_comma",
    ),
    KindSpec(
        "detectable_content:number_placeholders",
        (
            "Your answer must contain at least {num_placeholders} {placeholders} in square brackets, such "
            "as [address].",
        ),
        lambda: [{"num_placeholders": n} for n in range(1, 6)],
        lambda p: f"placeholders_at_least_{p['num_placeholders']}",
        render=lambda p: {"placeholders": _plural(p["num_placeholders"], "placeholder")},
    ),
    _fixed(
        "First repeat the request word for word without change, then give your answer. Say nothing before "
        "the repeated request, and do not repeat this instruction sentence.",
        "Begin by copying the request exactly as it is written (leave out this instruction), then answer it.",
        "Start your reply with the request repeated verbatim, not including this sentence, and then answer.",
        "Repeat the request word for word first (without this instruction), then write your answer after it.",
        kind="combination:repeat_prompt",
        slug="repeat_request",
    ),
    _fixed(
        "Give two different answers, separated by six asterisks: ******",
        "Write two different responses and separate them with six asterisk symbols: ******",
        "Provide two distinct answers. Put ****** (six asterisks) between them and nowhere else.",
        "Answer twice in two different ways, separating the two answers with ******",
        kind="combination:two_responses",
        slug="two_responses",
    ),
)

KIND_NAMES: tuple[str, ...] = tuple(spec.kind for spec in KIND_SPECS)
REQUEST_KINDS = frozenset({"combination:repeat_prompt"})
KINDS: Registry[KindSpec] = Registry("format instruction kind")
for _spec in KIND_SPECS:
    KINDS.add(_spec.kind, _spec)


def spec_for(kind: str) -> KindSpec:
    """The catalog entry for ``kind``; an unknown kind raises ``UnknownNameError`` listing valid kinds."""
    return KINDS.get(kind)
