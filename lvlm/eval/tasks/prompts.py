"""Rendering of the benchmark prompt (``docs/evaluation.md``) for one example and one verbalizer set.

The prompt is the task's instruction line, one input line per field, and the answer cue, joined by
newlines; for SST-2 with the golden set (the first line is one line, wrapped here)::

    If a movie review is positive, you need to output "positive". If a movie review is negative, \
you need to output "negative".
    Movie review: lovely and poignant.
    Answer:

It is not chat-wrapped here (the model side applies its own chat template). Example text is substituted
as a value, never interpreted as a format string. ``template_hash`` is a sha256 of the task's canonical
template definition (conditions, fields, template strings) for results provenance.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence

from lvlm.errors import ConfigError, DataError
from lvlm.eval.tasks.definitions import TaskSpec
from lvlm.eval.types import Example, PromptItem, VerbalizerSet


def render_instruction(task_spec: TaskSpec, words: tuple[str, str]) -> str:
    """The first line: both conditions with their verbalizer words."""
    try:
        return task_spec.template.instruction.format(
            condition_0=task_spec.conditions[0],
            condition_1=task_spec.conditions[1],
            word_0=words[0],
            word_1=words[1],
        )
    except (KeyError, IndexError, ValueError) as err:
        raise ConfigError(
            f"eval.task_defs.{task_spec.name}: bad instruction template ({err!r}); fix: use only "
            "{condition_0} {condition_1} {word_0} {word_1}"
        ) from err


def render_input_lines(task_spec: TaskSpec, example: Example) -> list[str]:
    """One ``<prefix>: <text>`` line per task field, in the task's order."""
    lines = []
    for field, prefix in task_spec.fields:
        if field not in example.inputs:
            raise DataError(
                f"task {task_spec.name}",
                f"example has no field '{field}' (has {sorted(example.inputs)})",
                "load examples with this task's loader",
                record=example.uid,
            )
        try:
            lines.append(task_spec.template.input_line.format(prefix=prefix, text=example.inputs[field]))
        except (KeyError, IndexError, ValueError) as err:
            raise ConfigError(
                f"eval.task_defs.{task_spec.name}: bad input_line template ({err!r}); fix: use only "
                "{prefix} and {text}"
            ) from err
    return lines


def render_prompt(task_spec: TaskSpec, example: Example, vset: VerbalizerSet) -> PromptItem:
    """The full prompt text of ``example`` under verbalizer set ``vset``."""
    lines = [render_instruction(task_spec, vset.words), *render_input_lines(task_spec, example)]
    lines.append(task_spec.template.answer)
    return PromptItem(
        task=task_spec.name,
        uid=example.uid,
        set_name=vset.name,
        system=vset.system,
        text="\n".join(lines),
        words=vset.words,
        gold=example.label,
    )


def build_prompts(
    tasks: Iterable[TaskSpec],
    examples_by_task: Mapping[str, Sequence[Example]],
    sets: Mapping[str, Sequence[VerbalizerSet]],
) -> list[PromptItem]:
    """Every (task, verbalizer set, example) prompt; order: task, then set, then example."""
    prompts: list[PromptItem] = []
    for spec in tasks:
        for name, table in (("examples_by_task", examples_by_task), ("sets", sets)):
            if spec.name not in table:
                raise ConfigError(f"build_prompts: {name} has no entry for task '{spec.name}'")
        for vset in sets[spec.name]:
            prompts.extend(render_prompt(spec, example, vset) for example in examples_by_task[spec.name])
    return prompts


def template_definition(task_spec: TaskSpec) -> dict[str, object]:
    """The parts of a task that determine its prompt text (besides the example and the words)."""
    return {
        "task": task_spec.name,
        "conditions": list(task_spec.conditions),
        "fields": [list(pair) for pair in task_spec.fields],
        "instruction": task_spec.template.instruction,
        "input_line": task_spec.template.input_line,
        "answer": task_spec.template.answer,
    }


def template_hash(task_spec: TaskSpec) -> str:
    """sha256 (hex) of the canonical JSON of ``template_definition``."""
    text = json.dumps(
        template_definition(task_spec), ensure_ascii=False, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def templates_hash(task_specs: Iterable[TaskSpec]) -> str:
    """One sha256 over the template definitions of several tasks (order-insensitive), for a whole run."""
    definitions = sorted((template_definition(spec) for spec in task_specs), key=lambda d: str(d["task"]))
    text = json.dumps(definitions, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
