"""The LLaVA layout of ``transformers`` (``LlavaForConditionalGeneration``) for an exported LVLM.

When the vision tower is HF CLIP (``hf_clip``) and the projector is LLaVA-1.5's ``mlp2x_gelu``, the whole
LVLM has an exact counterpart in ``transformers``: ``write_llava_hf`` writes ``out/llava_hf/`` with

* ``config.json``: ``LlavaConfig`` with the tower's ``vision_config``, the merged LLM's ``text_config``,
  ``image_token_index`` (the project's ``<image>`` token), ``vision_feature_layer`` (the tower's select
  layer), ``vision_feature_select_strategy: default`` (CLS dropped, as the project's tower does) and
  ``projector_hidden_act: gelu``;
* the weights under transformers' LLaVA key names (tower → ``vision_tower``, projector ``0``/``2`` →
  ``multi_modal_projector.linear_1``/``linear_2``, LLM → ``language_model`` + ``lm_head``), written by
  ``save_pretrained`` of the installed transformers;
* a ``LlavaProcessor`` (the tokenizer, a ``CLIPImageProcessor`` with the tower's size/mean/std, and a chat
  template that renders the training template with ``{"type": "image"}`` parts as ``<image>\\n``).

The model is assembled on the meta device and its parameters are the exported tensors themselves, so a 7B
export needs no second copy of the weights. Other towers/projectors have no LLaVA-HF form and are skipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from lvlm.models.lvlm import LVLM
from lvlm.models.vision import HFClipTower
from lvlm.templates import ChatTemplate

LLAVA_HF_DIR = "llava_hf"
_SYSTEM = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set sys = messages[0]['content'] -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set sys = DEFAULT -%}{%- set turns = messages -%}{%- endif -%}"
    "{%- if sys is not string and sys is not none -%}"
    "{%- set sys = (sys | selectattr('type', 'equalto', 'text') | map(attribute='text') | join(' ')) -%}"
    "{%- endif -%}"
)
_CONTENT = (
    "{%- if m['content'] is string -%}{%- set content = m['content'] -%}{%- else -%}"
    "{%- set content = namespace(text='') -%}"
    "{%- for part in m['content'] -%}"
    "{%- if part['type'] == 'image' -%}{%- set content.text = content.text + '<image>\\n' -%}"
    "{%- elif part['type'] == 'text' -%}{%- set content.text = content.text + part['text'] -%}{%- endif -%}"
    "{%- endfor -%}{%- set content = content.text -%}{%- endif -%}"
)
_LLAMA_2 = (
    "{%- for m in turns -%}" + _CONTENT + "{%- if m['role'] == 'user' -%}{{ bos_token }}[INST] "
    "{% if loop.first and sys %}<<SYS>>\n{{ sys }}\n<</SYS>>\n\n{% endif %}"
    "{{ content }} [/INST]"
    "{%- elif m['role'] == 'assistant' -%} {{ content }} {{ eos_token }}"
    "{%- endif -%}{%- endfor -%}"
)


def unsupported_reason(model: LVLM, projector_kind: str) -> str | None:
    """Why ``model`` has no ``LlavaForConditionalGeneration`` form (``None`` when it has one)."""
    if not isinstance(model.vision, HFClipTower):
        return f"vision tower {type(model.vision).__name__} is not HF CLIP"
    if projector_kind != "mlp2x_gelu":
        return f"projector {projector_kind} is not mlp2x_gelu"
    return None


def processor_chat_template(template: ChatTemplate) -> str | None:
    """A processor chat template (content lists with image parts) for llama_2-style ``template``."""
    if template.style != "llama_2":
        return None
    default = json.dumps(template.system) if template.system else "none"
    return _SYSTEM.replace("DEFAULT", default) + _LLAMA_2


def llava_state_dict(model: LVLM, llm: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The LVLM's tensors under transformers' LLaVA names (``llm`` is the merged LLM)."""
    state: dict[str, torch.Tensor] = {}
    for key, value in model.vision.model.state_dict().items():
        state[f"model.vision_tower.{key}"] = value
    for ours, theirs in (("0", "linear_1"), ("2", "linear_2")):
        for name, value in getattr(model.projector, ours).state_dict().items():
            state[f"model.multi_modal_projector.{theirs}.{name}"] = value
    for key, value in llm.model.state_dict().items():
        state[f"model.language_model.{key}"] = value
    state["lm_head.weight"] = llm.lm_head.weight
    return {key: value.detach() for key, value in state.items()}


def _materialise_buffers(llava: torch.nn.Module, model: LVLM, llm: torch.nn.Module) -> None:
    """Copy the non-persistent buffers (CLIP position ids, rotary frequencies) from the source modules."""
    sources = {f"model.vision_tower.{k}": v for k, v in model.vision.model.named_buffers()}
    sources |= {f"model.language_model.{k}": v for k, v in llm.model.named_buffers()}
    for name, buffer in list(llava.named_buffers()):
        if not buffer.is_meta:
            continue
        owner_name, _, attr = name.rpartition(".")
        owner = llava.get_submodule(owner_name)
        persistent = attr not in getattr(owner, "_non_persistent_buffers_set", set())
        owner.register_buffer(attr, sources[name].detach().clone(), persistent=persistent)


def build_llava_hf(model: LVLM, llm: torch.nn.Module) -> torch.nn.Module:
    """``LlavaForConditionalGeneration`` whose parameters are the LVLM's own tensors (no copy); ``llm`` is
    the merged LLM."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    vision: HFClipTower = model.vision  # type: ignore[assignment]
    text_config = llm.config
    config = LlavaConfig(
        vision_config=vision.model.config.to_dict(),
        text_config=text_config.to_dict(),
        image_token_index=int(model.image_token_id),
        image_seq_length=int(model.num_image_tokens),
        vision_feature_layer=int(vision.select_layer),
        vision_feature_select_strategy="default",
        projector_hidden_act="gelu",
        multimodal_projector_bias=True,
        tie_word_embeddings=bool(getattr(text_config, "tie_word_embeddings", False)),
    )
    with torch.device("meta"):
        llava = LlavaForConditionalGeneration(config)
    state = llava_state_dict(model, llm)
    expected = set(llava.state_dict())
    missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
    if missing or extra:
        raise RuntimeError(
            f"LLaVA-HF key mapping is incomplete (missing {missing[:3]}, unexpected {extra[:3]}); the "
            "installed transformers' LlavaForConditionalGeneration layout changed"
        )
    llava.load_state_dict(state, assign=True, strict=True)
    _materialise_buffers(llava, model, llm)
    return llava.eval()


def write_llava_hf(model: LVLM, llm: torch.nn.Module, tokenizer: object, template: ChatTemplate,
                   out: Path) -> Path:  # fmt: skip
    """Write ``out`` (``save_pretrained`` of the LLaVA model and its processor); returns ``out``."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    vision: HFClipTower = model.vision  # type: ignore[assignment]
    llava = build_llava_hf(model, llm)
    llava.save_pretrained(out, safe_serialization=True)
    size = int(vision.image_size)
    images = CLIPImageProcessor(
        size={"shortest_edge": size}, crop_size={"height": size, "width": size}, do_center_crop=True,
        image_mean=[float(v) for v in vision.mean], image_std=[float(v) for v in vision.std],
    )  # fmt: skip
    patch = int(vision.model.config.patch_size)
    processor = LlavaProcessor(
        image_processor=images, tokenizer=tokenizer, patch_size=patch,
        vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=processor_chat_template(template),
    )  # fmt: skip
    processor.save_pretrained(out)
    return out
