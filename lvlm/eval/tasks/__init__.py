"""What the benchmark asks: task definitions (``definitions``), prompt rendering (``prompts``) and the
verbalizer sets (``verbalizers``). Nothing is re-exported; import from those modules."""
