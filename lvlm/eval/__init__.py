"""The verbalizer-manipulation benchmark, grouped by role (protocol: ``docs/evaluation.md``).

``tasks`` (what is asked: task definitions, prompts, verbalizer sets), ``sources`` (where examples come
from: local files, the dataset hub, built-in smoke sets, sampling), ``scoring`` (how a model answers:
scorers, parser, batching, prediction cache), ``models`` (the scoring adapters and the registry of
evaluate's model kinds), ``results`` (metrics, bootstrap CIs, result files, W&B). At the top level:
``types`` (the shared value types), ``runner`` (one evaluation end to end) and ``distributed``.
Nothing is re-exported; import from the module that owns a name.
"""
