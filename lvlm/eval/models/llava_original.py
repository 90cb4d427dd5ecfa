"""The original LLaVA v1 release format, loaded into the project's LVLM (``model.kind=llava_original``).

A LLaVA release (``llava/train/train.py`` of haotian-liu/LLaVA writes it; ``llava/model/builder.py`` reads
it) is a folder with

* ``config.json``: the LLM config plus ``mm_vision_tower`` (a CLIP hub id or folder),
  ``mm_vision_select_layer``, ``mm_vision_select_feature`` (``patch``: CLS dropped), ``mm_projector_type``
  (``linear`` when absent, or ``mlp2x_gelu``), ``mm_hidden_size`` and ``mm_use_im_start_end``;
* optionally a LoRA adapter of the LLM: ``adapter_config.json`` + ``adapter_model.bin|safetensors`` (peft
  keys ``base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight`` …);
* the other trained weights: ``non_lora_trainables.bin`` (keys ``base_model.model.model.mm_projector.*``)
  or, for a projector-only release, ``mm_projector.bin`` (keys ``model.mm_projector.*``).

``load_llava_original`` maps that onto the project's model config (HF CLIP tower from ``mm_vision_tower``
with its select layer, the projector kind, the LLM and tokenizer from ``base``), builds it with
``lvlm.models.presets.build_model``, merges the LoRA adapter into the LLM and loads the projector (and any
other non-LoRA weight: embeddings, ``lm_head``, an unfrozen tower). Features the project's LVLM does not
have (``mm_use_im_start_end``, ``cls_patch`` features, LLaVA-1.6 ``anyres``/``unpad``) are refused with one
clear line. The key names follow the upstream code; no upstream code is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lvlm.errors import ConfigError
from lvlm.models.presets import BuiltModel, build_model
from lvlm.models.projector import PROJECTORS

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
EXTRA_WEIGHTS = ("non_lora_trainables.bin", "mm_projector.bin")
DEFAULT_TEMPLATE = "llava_llama_2"
_PROJECTOR_PREFIX = "model.mm_projector."
_TOWER_PREFIX = "model.vision_tower.vision_tower."


@dataclass(frozen=True)
class LlavaRelease:
    """A LLaVA release folder: its ``config.json``, whether it holds a LoRA adapter, its other weights."""

    path: Path
    config: dict[str, Any]
    has_adapter: bool
    extra_weights: Path | None

    @property
    def projector_kind(self) -> str:
        return str(self.config.get("mm_projector_type") or "linear")


def _fail(path: Path, problem: str, fix: str) -> ConfigError:
    return ConfigError(f"{path}: {problem}; fix: {fix}")


def locate_release(path_or_id: str) -> Path:
    """A local release folder, or a hub id resolved through the local hub cache (HF_HUB_OFFLINE honoured)."""
    local = Path(path_or_id).expanduser()
    if local.is_dir():
        return local
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(str(path_or_id)))
    except Exception as error:  # offline, unknown repo, no network: all one line
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ConfigError(
            f"{path_or_id}: not a LLaVA release folder and not in the hub cache ({reason}); fix: pass "
            "model.path=<folder holding config.json and the release weights>"
        ) from None


def read_release(path: str | Path) -> LlavaRelease:
    """Read and check a release folder's ``config.json``; list which weight files it holds."""
    path = Path(path)
    config_file = path / "config.json"
    fix = "pass model.path=<a LLaVA release folder (config.json, adapter_model.*, non_lora_trainables.bin)>"
    if not config_file.is_file():
        raise _fail(path, "no config.json, so it is not a LLaVA release", fix)
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise _fail(config_file, f"unreadable config ({error})", fix) from None
    if not config.get("mm_vision_tower"):
        raise _fail(config_file, "has no mm_vision_tower, so it is not a LLaVA config", fix)
    unsupported = {
        "mm_use_im_start_end": bool(config.get("mm_use_im_start_end", False)),
        "mm_vision_select_feature": str(config.get("mm_vision_select_feature", "patch")) != "patch",
        "mm_patch_merge_type": "unpad" in str(config.get("mm_patch_merge_type", "flat")),
        "image_aspect_ratio": "anyres" in str(config.get("image_aspect_ratio", "")),
    }
    for key, bad in unsupported.items():
        if bad:
            raise _fail(
                config_file,
                f"{key}={config.get(key)!r} is not supported by the project's LVLM",
                "use a LLaVA v1/v1.5 release (patch features, no image start/end tokens, square images)",
            )
    kind = str(config.get("mm_projector_type") or "linear")
    if kind not in PROJECTORS:
        raise _fail(
            config_file,
            f"mm_projector_type={kind!r} has no project projector",
            f"valid projector kinds: {', '.join(PROJECTORS.names())}",
        )
    has_adapter = (path / ADAPTER_CONFIG).is_file()
    if has_adapter and not any((path / name).is_file() for name in ADAPTER_WEIGHTS):
        missing = " or ".join(ADAPTER_WEIGHTS)
        raise _fail(path, f"{ADAPTER_CONFIG} without {missing}", "copy the whole release")
    extra = next((path / name for name in EXTRA_WEIGHTS if (path / name).is_file()), None)
    if extra is None:
        missing = " or ".join(EXTRA_WEIGHTS)
        raise _fail(path, f"no {missing} (the projector weights)", "copy the whole release")
    return LlavaRelease(path, config, has_adapter, extra)


def model_config(release: LlavaRelease, base: str, dtype: str = "float32") -> dict[str, Any]:
    """The project's model config of a release: tower, select layer and projector kind from its config,
    tokenizer and LLM from ``base`` (the LLM the release was trained from)."""
    return {
        "name": f"llava_original:{release.path.name}",
        "tokenizer": {"kind": "hf", "name_or_path": str(base)},
        "vision": {
            "kind": "hf_clip",
            "name_or_path": str(release.config["mm_vision_tower"]),
            "config": None,
            "select_layer": int(release.config.get("mm_vision_select_layer", -1)),
        },
        "llm": {"name_or_path": str(base), "dtype": str(dtype)},
        "projector": {"kind": release.projector_kind},
        "peft": None,
        "template": DEFAULT_TEMPLATE,
    }


def normalise_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Upstream's key normalisation: drop ``base_model.``, then one ``model.`` when keys start
    ``model.model.``."""
    state = {key.removeprefix("base_model."): value for key, value in state.items()}
    if any(key.startswith("model.model.") for key in state):
        state = {key.removeprefix("model."): value for key, value in state.items()}
    return state


def project_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Normalised LLaVA keys → the project's LVLM state-dict keys (projector, vision tower, LLM)."""
    mapped = {}
    for key, value in state.items():
        if key.startswith(_PROJECTOR_PREFIX):
            mapped["projector." + key.removeprefix(_PROJECTOR_PREFIX)] = value
        elif key.startswith(_TOWER_PREFIX):
            mapped["vision.model." + key.removeprefix(_TOWER_PREFIX)] = value
        else:
            mapped["llm." + key] = value
    return mapped


def _load_extra_weights(built: BuiltModel, release: LlavaRelease) -> int:
    file = release.extra_weights
    try:
        raw = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise _fail(file, f"unreadable weights ({reason})", "copy the file again") from None
    state = project_keys(normalise_keys(dict(raw)))
    own = built.model.state_dict()
    misfits = sorted(key for key, value in state.items() if key not in own or own[key].shape != value.shape)
    if misfits:
        key = misfits[0]
        shape = tuple(own[key].shape) if key in own else "absent"
        raise _fail(
            file,
            f"{len(misfits)} tensor(s) do not fit the model built from its config (first: {key}, "
            f"{tuple(state[key].shape)} there, {shape} here)",
            "pass the base LLM the release was trained from",
        )
    if not any(key.startswith("projector.") for key in state):
        raise _fail(file, "holds no mm_projector weights", "copy the whole release")
    built.model.load_state_dict(state, strict=False)
    return len(state)


def merge_adapter(llm: torch.nn.Module, path: Path) -> torch.nn.Module:
    """The LLM with the release's LoRA adapter (peft layout) merged into its weights."""
    from peft import PeftModel

    try:
        wrapped = PeftModel.from_pretrained(llm, str(path), is_trainable=False)
    except Exception as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise _fail(
            path,
            f"cannot apply its LoRA adapter to the base LLM ({reason})",
            "pass the base LLM the release was trained from as model.base",
        ) from None
    return wrapped.merge_and_unload()


def load_llava_original(path: str | Path, base: str, dtype: str = "float32") -> BuiltModel:
    """The release at ``path`` (folder or cached hub id) on top of ``base`` as the project's LVLM."""
    release = read_release(locate_release(str(path)))
    try:
        built = build_model(model_config(release, base, dtype))
    except (OSError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        raise ConfigError(
            f"{release.path}: cannot build its base LLM, tokenizer or vision tower ({reason}); fix: pass "
            "model.base=<Llama-2-chat folder or cached hub id> and make mm_vision_tower reachable"
        ) from None
    hidden = int(release.config.get("mm_hidden_size", built.model.vision.hidden_size))
    if hidden != built.model.vision.hidden_size:
        raise _fail(
            release.path / "config.json",
            f"mm_hidden_size={hidden} but the tower "
            f"{release.config['mm_vision_tower']} has {built.model.vision.hidden_size}",
            "use the release's tower",
        )
    if release.has_adapter:
        built.model.llm = merge_adapter(built.model.llm, release.path)
    _load_extra_weights(built, release)
    built.model.eval()
    return built
