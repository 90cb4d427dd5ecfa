"""Jinja chat templates that reproduce the project's conversation templates (``lvlm.templates``).

The exported tokenizer carries the template the checkpoint was trained with, so
``tokenizer.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
tokenize=False)`` renders exactly ``get_template(name).generation_prompt(p)``. For ``llama_2``-style
templates with a system prompt (``llava_llama_2``) that prompt is the default system message, used when the
conversation has none; a leading ``system`` message replaces it. ``plain`` (stage-1 captioning) has no chat
form, so the tokenizer keeps the template it already had.
"""

from __future__ import annotations

import json

from lvlm.templates import ChatTemplate

_SYSTEM = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set sys = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set sys = DEFAULT -%}{%- set turns = messages -%}{%- endif -%}"
)
_LLAMA_2 = (
    "{%- for m in turns -%}"
    "{%- if m['role'] == 'user' -%}{{ bos_token }}[INST] "
    "{% if loop.first and sys %}<<SYS>>\n{{ sys }}\n<</SYS>>\n\n{% endif %}"
    "{{ m['content'] }} [/INST]"
    "{%- elif m['role'] == 'assistant' -%}"
    "{% generation %} {{ m['content'] }} {{ eos_token }}{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
)
_VICUNA = (
    "{%- for m in turns -%}"
    "{%- if m['role'] == 'user' -%}"
    "{% if loop.first %}{{ bos_token }}{% if sys %}{{ sys }} {% endif %}{% endif %}"
    "USER: {{ m['content'] }} ASSISTANT:"
    "{%- elif m['role'] == 'assistant' -%}"
    "{% generation %} {{ m['content'] }}{{ eos_token }}{% endgeneration %}"
    "{%- endif -%}{%- endfor -%}"
)
_STYLES = {"llama_2": _LLAMA_2, "vicuna": _VICUNA}


def chat_template_for(template: ChatTemplate) -> str | None:
    """The Jinja source for ``template``, or ``None`` when it has no chat form (``plain``)."""
    body = _STYLES.get(template.style)
    if body is None:
        return None
    default = json.dumps(template.system) if template.system else "none"
    return _SYSTEM.replace("DEFAULT", default) + body
