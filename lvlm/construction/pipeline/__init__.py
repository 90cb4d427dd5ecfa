"""The construction pipeline: from input images to the four datasets and their cards.

``inputs`` lists, samples and assigns instructions to the input images; ``stages`` runs the caption,
question-answer and answer stages with bounded concurrency into resumable ``stages/*.jsonl`` records;
``datasets`` assembles verified samples and writes FOVIT / NoFOVIT / FOIT / NoFOIT in LLaVA format;
``cards`` writes ``card.json`` / ``card.md``; ``build`` ties it together (``build_datasets``,
``ensure_dataset``) from the ``build_data`` config.
"""
