"""How a scored model wraps the benchmark prompt: chat template, system prompt, image slot.

Every ``ScoringModel`` built by ``lvlm.eval.models.registry`` carries a ``wrapping`` record that
``results.json`` and ``results.md`` report, so rows that are compared can be checked to be wrapped the same
way (``docs/evaluation.md``, "What the model sees")::

    {"template": <project template name | "tokenizer chat template" | "processor chat template" |
                  "none (raw prompt)">,
     "system_prompt": <text or null>, "image_slot": "none" | "blank",
     "rendered": <the wrapped form of the placeholder prompt "{prompt}">}

Config keys (``conf/evaluate.yaml``):

* ``model.template``: a project template name (``lvlm.templates.TEMPLATES``: ``llama_2``, ``llava_llama_2``,
  ``vicuna_v1`` …). ``null`` means the kind's default: the training template for ``checkpoint``/``tiny``,
  ``llava_llama_2`` for ``llava_original``, the tokenizer's (processor's) own chat template for ``hf``
  (``hf_vlm``).
* ``model.system_prompt``: ``null`` keeps the template's own system prompt (none for a tokenizer template
  without a default); ``none`` removes it; ``llava`` / ``vicuna`` name the LLaVA / Vicuna system prompts;
  any other text is used verbatim.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from lvlm.errors import ConfigError
from lvlm.templates import LLAVA_SYSTEM_PROMPT, VICUNA_SYSTEM_PROMPT, ChatTemplate, get_template

TOKENIZER_TEMPLATE = "tokenizer chat template"
PROCESSOR_TEMPLATE = "processor chat template"
RAW_PROMPT = "none (raw prompt)"
PROMPT_PLACEHOLDER = "{prompt}"
NAMED_SYSTEM_PROMPTS: dict[str, str | None] = {
    "none": None,
    "llava": LLAVA_SYSTEM_PROMPT,
    "vicuna": VICUNA_SYSTEM_PROMPT,
}
_KEEP = object()  # model.system_prompt=null: keep the template's own system prompt


def system_prompt_override(value: object) -> object:
    """``model.system_prompt`` → text, ``None`` (no system prompt) or ``_KEEP`` (template default)."""
    if value is None:
        return _KEEP
    if not isinstance(value, str):
        raise ConfigError(f"model.system_prompt must be text, null or a name, got {value!r}")
    return NAMED_SYSTEM_PROMPTS.get(value.strip().lower(), value) if value.strip() else None


def keeps_template_system(override: object) -> bool:
    return override is _KEEP


def resolve_template(default: str, name: str | None, system_prompt: object = None) -> ChatTemplate:
    """The project template ``name`` (``None``: ``default``) with ``model.system_prompt`` applied."""
    template = get_template(str(name) if name else default)
    override = system_prompt_override(system_prompt)
    if keeps_template_system(override):
        return template
    return dataclasses.replace(template, system=override)


def wrapping_record(
    template: str, system_prompt: str | None, image_slot: str, render: Callable[[str], str]
) -> dict[str, object]:
    """The ``wrapping`` entry of results.json; ``render`` wraps a prompt exactly as the scorer does."""
    return {
        "template": template,
        "system_prompt": system_prompt,
        "image_slot": image_slot,
        "rendered": render(PROMPT_PLACEHOLDER),
    }


def effective_system_prompt(render: Callable[[str | None], str]) -> str | None:
    """The system prompt a chat template puts in when given none (``None`` if it adds nothing).

    ``render(system)`` wraps a fixed user turn with that system message (``None``: no system message). The
    default is what fills the place a probe system message takes.
    """
    probe = "\x00lvlm-system-probe\x00"
    try:
        plain, probed = render(None), render(probe)
    except Exception:  # a template that refuses system messages has no default either
        return None
    if probe not in probed:
        return None
    before, _, after = probed.partition(probe)
    if plain == before + after or not (plain.startswith(before) and plain.endswith(after)):
        return None
    found = plain[len(before) : len(plain) - len(after)]
    return found or None
