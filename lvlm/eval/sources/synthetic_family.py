"""The miniature's synthetic task family as an evaluation data source (``eval.source=synthetic_family``).

The family (``lvlm.data.instruct_mix``: one object description per example, tasks ``mini_colour``,
``mini_shape``, ``mini_size``, ``mini_row``) is generated, not read: this source returns every example of
the task's *evaluation* part of the fixed description split, class-balanced, as ``Example``s whose single
input field is the one the task definition names (``conf/eval/tasks/mini_*.yaml``). The loader then samples
and limits them like any other source (``sampling.stratified_sample`` with ``eval.seed``), and the prompts,
scorers, metrics and result files are the benchmark's own. ``data_dir`` is not used; the data never counts
as smoke data. The training half of the split feeds ``data=instruct_mix`` and is never served here.
"""

from __future__ import annotations

from collections import Counter

from lvlm.data.instruct_mix import FAMILY_TASKS, family_examples
from lvlm.errors import DataError
from lvlm.eval.sources.common import Conversion
from lvlm.eval.tasks.definitions import TaskSpec
from lvlm.eval.types import Example

SOURCE_NAME = "synthetic_family"


def family_conversion(spec: TaskSpec) -> tuple[Conversion, str]:
    """The evaluation examples of family task ``spec.name`` and the source id recorded in results.json."""
    if spec.name not in FAMILY_TASKS:
        raise DataError(
            f"eval.task_defs.{spec.name}",
            f"not a task of the synthetic family ({', '.join(sorted(FAMILY_TASKS))})",
            "use eval=mini, or another eval.source for this task",
        )
    if len(spec.field_names) != 1:
        raise DataError(
            f"eval.task_defs.{spec.name}.fields",
            f"the synthetic family has one input field, got {list(spec.field_names)}",
            "give the task exactly one field",
        )
    field = spec.field_names[0]
    examples = [
        Example(task=spec.name, uid=ex.uid, inputs={field: ex.text}, label=ex.label)
        for ex in family_examples(spec.name, "eval")
    ]
    return Conversion(
        examples=examples, skipped=Counter(), dropped=Counter()
    ), f"{SOURCE_NAME}:{spec.name}:eval"
