"""Entry point for turning plain content sentences into an answer that follows a format instruction.

``apply_format(instr, sentences, rng)`` cleans the content (``base.clean_units``), then calls the
formatter registered for ``instr.kind`` (``structure``, ``content``). The offline
synthetic construction backend uses it to write FO answers; every instruction in the catalog is satisfiable
this way, which the tests verify with the checkers. NoFO answers do not go through this module.
"""

from __future__ import annotations

import random

from lvlm.construction.catalogue.formatters import content, structure  # noqa: F401  (register)
from lvlm.construction.catalogue.formatters.base import FORMATTERS, FormatContext, Padding, clean_units
from lvlm.construction.catalogue.instructions import FormatInstruction
from lvlm.errors import ConfigError, DataError

__all__ = ["FORMATTERS", "apply_format"]


def apply_format(
    instr: FormatInstruction, sentences: list[str], rng: random.Random, *, request: str | None = None
) -> str:
    """An answer built from ``sentences`` that satisfies ``instr``.

    ``request`` is the user's request text; ``combination:repeat_prompt`` needs it and raises
    ``ConfigError`` without it. Content with no word in it raises ``DataError``.
    """
    formatter = FORMATTERS.get(instr.kind)
    if isinstance(sentences, str):
        sentences = [sentences]
    units = clean_units(list(sentences))
    if not units:
        problem = f"no content sentence has a word in it ({sentences!r})"
        raise DataError("apply_format", problem, "pass non-empty sentences")
    if instr.needs_request and (request is None or not request.strip()):
        raise ConfigError(
            f"apply_format: instruction '{instr.id}' repeats the request; fix: pass request=<the question>"
        )
    return formatter(instr.params, FormatContext(units, rng, request, Padding(units, rng)))
