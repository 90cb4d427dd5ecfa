"""The paper preset's vision towers use the activation their pretrained weights were trained with.

OpenAI's CLIP weights were trained with QuickGELU. The paper preset loads them as LLaVA does (HF
``CLIPVisionModel`` of ``openai/clip-vit-large-patch14``); the open_clip alternative must be the
``-quickgelu`` architecture. Checked on the resolved configs and on tiny stand-ins with the same config
classes and activation; nothing downloads.
"""

from __future__ import annotations

import json

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf
from transformers import CLIPVisionConfig, CLIPVisionModel
from transformers.activations import QuickGELUActivation

from lvlm.errors import ConfigError
from lvlm.models.vision import HFClipTower, OpenClipTower, build_vision, check_open_clip_activation
from lvlm.utils.runtime import register_resolvers
from tests.helpers.paths import REPO_ROOT

TINY_CLIP = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
             "image_size": 32, "patch_size": 8}  # fmt: skip


def _vision_cfg(*overrides: str) -> dict:
    register_resolvers()
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=["model=llava_llama2_7b_chat", *overrides])
    return OmegaConf.to_container(cfg.model.vision, resolve=True)


def _save_clip(path, hidden_act: str):
    CLIPVisionModel(CLIPVisionConfig(**TINY_CLIP, hidden_act=hidden_act)).save_pretrained(path)
    return path


def test_paper_preset_loads_openai_clip_through_transformers_with_quick_gelu():
    vision = _vision_cfg()
    assert vision == {
        "kind": "hf_clip",
        "name_or_path": "openai/clip-vit-large-patch14",
        "config": None,
        "select_layer": -2,
        "hidden_act": "quick_gelu",
    }
    assert CLIPVisionConfig().hidden_act == vision["hidden_act"]  # the config class openai's weights use


def test_hf_tower_of_the_preset_builds_quick_gelu_on_a_stand_in(tmp_path):
    vision = _vision_cfg()
    vision["name_or_path"] = str(_save_clip(tmp_path / "clip", "quick_gelu"))
    tower = build_vision(vision)
    assert isinstance(tower, HFClipTower)
    acts = [m.activation_fn for name, m in tower.model.named_modules() if name.endswith(".mlp")]
    assert len(acts) == TINY_CLIP["num_hidden_layers"]
    assert all(isinstance(act, QuickGELUActivation) for act in acts)


def test_hf_tower_with_the_wrong_activation_is_a_config_error(tmp_path):
    vision = _vision_cfg()
    vision["name_or_path"] = str(_save_clip(tmp_path / "clip", "gelu"))
    with pytest.raises(ConfigError, match=r"hidden_act='gelu' but the preset expects 'quick_gelu'") as err:
        build_vision(vision)
    assert "\n" not in str(err.value)


def test_open_clip_alternative_is_the_quick_gelu_architecture():
    from open_clip.factory import get_model_config
    from open_clip.pretrained import get_pretrained_cfg

    vision = _vision_cfg("model/vision=clip_vit_l14")
    assert (vision["kind"], vision["pretrained"], vision["select_layer"]) == ("open_clip", "openai", -2)
    assert get_model_config(vision["model_name"])["quick_gelu"] is True
    assert get_pretrained_cfg(vision["model_name"], vision["pretrained"])["quick_gelu"] is True
    check_open_clip_activation(vision["model_name"], vision["pretrained"])  # no error: they match


def test_open_clip_tower_builds_quick_gelu_when_the_config_says_so(tmp_path):
    """A tiny stand-in with the preset's ``quick_gelu`` flag builds QuickGELU blocks through OpenClipTower."""
    import open_clip
    from open_clip.factory import get_model_config
    from open_clip.transformer import QuickGELU

    flag = get_model_config(_vision_cfg("model/vision=clip_vit_l14")["model_name"])["quick_gelu"]
    tiny = json.loads((REPO_ROOT / "lvlm/models/open_clip_configs/lvlm-tiny-vit.json").read_text())
    (tmp_path / "lvlm-test-tiny-vit-qg.json").write_text(json.dumps({**tiny, "quick_gelu": flag}))
    open_clip.add_model_config(tmp_path)
    tower = OpenClipTower("lvlm-test-tiny-vit-qg", pretrained=None)
    acts = [block.mlp.gelu for block in tower.visual.transformer.resblocks]
    assert acts and all(isinstance(act, QuickGELU) for act in acts)


def test_open_clip_gelu_model_with_openai_weights_is_a_config_error():
    """open_clip only warns about this pair; the project refuses it before any download."""
    with pytest.raises(ConfigError, match=r"use model_name=ViT-L-14-quickgelu") as err:
        check_open_clip_activation("ViT-L-14", "openai")
    assert "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="does not match the activation"):
        OpenClipTower("ViT-L-14", pretrained="openai")
