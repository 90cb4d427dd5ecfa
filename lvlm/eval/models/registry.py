"""The model kinds ``evaluate.py`` can score, one builder function per ``model.kind``.

``EVAL_MODELS`` maps a kind name to a builder that takes the resolved evaluate config (a plain mapping
with ``model``, ``eval``, ``paths``, ``seed`` …) and returns a ``ScoringModel``:

- ``tiny``: a tiny LVLM built in-process from the ``model.preset`` preset (offline smoke run);
- ``hf``: a Hugging Face causal LM from ``model.name_or_path`` (``model.dtype``, ``model.device``,
  ``model.use_chat_template``), the text-only LLM row;
- ``checkpoint``: an lvlm training checkpoint from ``model.checkpoint`` (the FOVIT/NoFOVIT and FOIT/NoFOIT
  rows), in ``model.dtype`` on ``model.device``;
- ``hf_vlm``: any Hugging Face vision-language model from ``model.name_or_path``
  (``AutoModelForImageTextToText`` + ``AutoProcessor``, the processor's chat template), e.g. LLaVA-1.5-hf;
- ``llava_original``: an original LLaVA v1 release (``model.path``) on its base LLM (``model.base``), loaded
  into the project's LVLM (the LLaVA baseline row; ``lvlm.eval.models.llava_original``).

Every kind wraps prompts as ``model.template`` / ``model.system_prompt`` say (``lvlm.eval.models.wrapping``;
null = the kind's default) and records it as ``wrapping``. LVLM kinds honour ``eval.image_slot``. Adding a
kind is one function registered with ``@EVAL_MODELS.register("<kind>")`` plus the ``model.*`` keys it reads
in ``conf/evaluate.yaml``. A miss raises ``UnknownNameError`` listing the valid kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lvlm.errors import ConfigError
from lvlm.eval.models.hf import load_hf_scoring_model, resolve_device
from lvlm.eval.models.hf_vlm import load_hf_vlm_scoring_model
from lvlm.eval.models.llava_original import DEFAULT_TEMPLATE as LLAVA_TEMPLATE
from lvlm.eval.models.llava_original import load_llava_original
from lvlm.eval.models.lvlm import LVLMScoringModel, place_model, scoring_model_from_checkpoint
from lvlm.eval.models.wrapping import resolve_template
from lvlm.eval.types import ScoringModel
from lvlm.models.presets import build_model
from lvlm.registry import Registry

EvalModelBuilder = Callable[[Mapping[str, Any]], ScoringModel]
EVAL_MODELS: Registry[EvalModelBuilder] = Registry("model.kind")


@EVAL_MODELS.register("tiny")
def build_tiny(cfg: Mapping[str, Any]) -> ScoringModel:
    """The ``model.preset`` LVLM built in-process, seeded with ``seed``."""
    import pytorch_lightning as pl

    pl.seed_everything(int(cfg["seed"]), verbose=False)
    built = build_model(cfg["model"]["preset"], cache_dir=Path(cfg["paths"]["cache_dir"]))
    model = cfg["model"]
    template = resolve_template(built.template, model.get("template"), model.get("system_prompt"))
    return LVLMScoringModel(built.model, built.tokenizer, template, str(cfg["eval"]["image_slot"]))


@EVAL_MODELS.register("hf")
def build_hf(cfg: Mapping[str, Any]) -> ScoringModel:
    """A causal LM and its tokenizer loaded with ``from_pretrained`` from ``model.name_or_path``."""
    model = cfg["model"]
    if not model.get("name_or_path"):
        raise ConfigError("model.kind=hf needs model.name_or_path=<local dir or hub id>")
    return load_hf_scoring_model(
        str(model["name_or_path"]), str(model["dtype"]), str(model["device"]),
        use_chat_template=bool(model["use_chat_template"]), system_prompt=model.get("system_prompt"),
        template=model.get("template"),
    )  # fmt: skip


@EVAL_MODELS.register("checkpoint")
def build_checkpoint(cfg: Mapping[str, Any]) -> ScoringModel:
    """The LVLM saved in the lvlm training checkpoint ``model.checkpoint``, in ``model.dtype`` on
    ``model.device``, wrapped in its training template unless ``model.template``/``system_prompt`` say."""
    model = cfg["model"]
    if not model.get("checkpoint"):
        raise ConfigError("model.kind=checkpoint needs model.checkpoint=<path to .ckpt>")
    return scoring_model_from_checkpoint(
        Path(model["checkpoint"]), str(cfg["eval"]["image_slot"]),
        template=model.get("template"), system_prompt=model.get("system_prompt"),
        dtype=str(model.get("dtype") or "float32"), device=str(model.get("device") or "cpu"),
    )  # fmt: skip


@EVAL_MODELS.register("llava_original")
def build_llava_original(cfg: Mapping[str, Any]) -> ScoringModel:
    """A LLaVA v1 release (``model.path``: folder or cached hub id) on ``model.base``, as the project's LVLM,
    wrapped in ``llava_llama_2`` unless ``model.template``/``model.system_prompt`` say otherwise."""
    model = cfg["model"]
    if not model.get("path") or not model.get("base"):
        raise ConfigError(
            "model.kind=llava_original needs model.path=<LLaVA release folder or hub id> and "
            "model.base=<the Llama-2-chat folder or hub id it was trained from>"
        )
    dtype, device = str(model.get("dtype") or "float32"), str(model.get("device") or "cpu")
    resolve_device(device)  # a CUDA request on a CPU machine fails before the slow load
    built = load_llava_original(str(model["path"]), str(model["base"]), dtype)
    template = resolve_template(LLAVA_TEMPLATE, model.get("template"), model.get("system_prompt"))
    lvlm = place_model(built.model, dtype, device)
    return LVLMScoringModel(lvlm, built.tokenizer, template, str(cfg["eval"]["image_slot"]))


@EVAL_MODELS.register("hf_vlm")
def build_hf_vlm(cfg: Mapping[str, Any]) -> ScoringModel:
    """A Hugging Face VLM and its processor from ``model.name_or_path``; text-only prompts unless
    ``eval.image_slot=blank``."""
    model = cfg["model"]
    if not model.get("name_or_path"):
        raise ConfigError("model.kind=hf_vlm needs model.name_or_path=<local dir or hub id>")
    return load_hf_vlm_scoring_model(
        str(model["name_or_path"]), str(model.get("dtype") or "float32"), str(model.get("device") or "cpu"),
        image_slot=str(cfg["eval"]["image_slot"]), system_prompt=model.get("system_prompt"),
        template=model.get("template"),
    )  # fmt: skip
