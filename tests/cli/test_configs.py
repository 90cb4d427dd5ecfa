"""Every Hydra config option composes and resolves; unknown names fail with the valid options listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lvlm.utils.runtime import register_resolvers
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

CONF = REPO_ROOT / "conf"
TRAIN_GROUPS = ["model", "data", "stage", "trainer", "logger", "callbacks", "debug"]
MODEL_SUBGROUPS = ["vision", "llm", "projector", "peft", "tokenizer"]


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


def _compose(config: str, overrides: list[str]):
    register_resolvers()
    with initialize_config_dir(str(CONF), version_base="1.3"):
        return compose(config, overrides=overrides)


CASES = [f"{group}={option}" for group in TRAIN_GROUPS for option in _options(group)]
CASES += [f"model/{sub}={option}" for sub in MODEL_SUBGROUPS for option in _options(f"model/{sub}")]


@pytest.mark.parametrize("override", CASES)
def test_train_config_option_composes_and_resolves(override):
    cfg = _compose("train", [override])
    for key in ("model", "data", "stage", "paths"):
        OmegaConf.to_container(cfg[key], resolve=True)
    assert cfg.model.name and cfg.data.name and cfg.stage.name


def test_paths_default_to_the_project_root():
    cfg = _compose("train", [])
    assert Path(cfg.paths.root).resolve() == REPO_ROOT


def test_unknown_config_name_names_the_group_and_options(tmp_path):
    result = run_cli("train.py", "data=not_a_dataset", f"hydra.run.dir={tmp_path}", timeout=120)
    assert result.returncode != 0
    assert "Could not find 'data/not_a_dataset'" in result.stderr
    assert "synthetic" in result.stderr and "fovit" in result.stderr


@pytest.mark.parametrize("option", _options("construction"))
def test_build_data_config_composes(option):
    cfg = _compose("build_data", [f"construction={option}", f"paths.root={REPO_ROOT}"])
    OmegaConf.to_container(cfg.construction, resolve=True)
    assert cfg.datasets == ["fovit", "nofovit", "foit", "nofoit"]


@pytest.mark.parametrize(
    "override",
    [
        "model.kind=tiny",
        "model.kind=hf",
        "model.kind=checkpoint",
        "eval=verbalizer",
        "model@model.preset=tiny_hf_clip",
    ],
)
def test_evaluate_config_composes(override):
    cfg = _compose("evaluate", [override])
    OmegaConf.to_container(cfg.eval, resolve=True)
    OmegaConf.to_container(cfg.model, resolve=True)
    assert len(cfg.eval.tasks) == 9 and cfg.eval.scorer == "generate"


@pytest.mark.parametrize("experiment", _options("experiment"))
def test_experiment_configs_compose_as_the_paper_rows(experiment):
    cfg = _compose("train", [f"experiment={experiment}"])
    assert cfg.model.name == "llava_llama2_7b_chat" and cfg.trainer.accelerator == "gpu"
    assert cfg.stage.name == {
        "pretrain_lcs558k": "pretrain",
        "foit": "text_finetune",
        "nofoit": "text_finetune",
    }.get(experiment, "finetune")
