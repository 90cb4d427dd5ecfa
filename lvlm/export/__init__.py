"""Export a trained LVLM checkpoint to files the wider ecosystem reads (``python export.py``).

``export_checkpoint(ckpt, out)`` rebuilds the model with ``lvlm.models.checkpoint.load_lvlm_checkpoint``,
merges LoRA adapters into the LLM, and writes ``out/llm/`` (``save_pretrained``: config, safetensors
weights, generation config, tokenizer with the training chat template), ``out/projector.safetensors``,
``out/vision_config.json``, ``out/export.json`` (provenance) and ``out/README.md`` (a model card). The LLM
then loads with ``AutoModelForCausalLM.from_pretrained(out / "llm")`` and ``AutoTokenizer`` alone.
"""

from lvlm.export.writer import ExportResult, export_checkpoint

__all__ = ["ExportResult", "export_checkpoint"]
