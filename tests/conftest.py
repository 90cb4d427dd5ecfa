"""Pytest fixtures: offline environment, the tiny model, tokenizer, and paths to real data.

Plain helpers (paths, running the entry points) live in ``tests/helpers`` so test modules import them from
there, never from this file.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from tests.helpers.paths import REPO_ROOT, SHARED_DATA


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (it sits beside the repository as ../shared/data)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_tokenizer():
    from lvlm.models.tokenizer import build_tokenizer

    return build_tokenizer()


@pytest.fixture(scope="session")
def tiny_model_cfg() -> dict:
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train")
    return OmegaConf.to_container(cfg.model, resolve=True)
