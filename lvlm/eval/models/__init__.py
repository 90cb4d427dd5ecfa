"""Models seen by the benchmark: the ``ScoringModel`` adapters for Hugging Face causal LMs (``hf``) and
lvlm checkpoints (``lvlm``), and ``registry.EVAL_MODELS``, the builders behind ``evaluate.py``'s
``model.kind``. Nothing is re-exported."""
