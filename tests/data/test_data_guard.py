"""No silent synthetic data behind real rows (docs/model.md, "Data guard").

A real model preset (no ``tiny: true``) must not train on FOVIT / NoFOVIT / FOIT / NoFOIT built by the
offline synthetic backend (as its ``card.json`` records), nor on one not built yet that would be built by
it, nor on ``data=synthetic`` scenes. Tiny presets keep the synthetic default. Checked on the resolved real
configs; the synthetic dataset is really built (seconds), nothing downloads.
"""

from __future__ import annotations

import json
import shutil

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lvlm.construction.data_kind import REAL_BUILD, card_backend, check_data_for_model
from lvlm.construction.pipeline.build import ensure_dataset
from lvlm.errors import ConfigError
from lvlm.utils.runtime import register_resolvers
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

ROWS = ["fovit", "nofovit", "foit", "nofoit"]


def _cfg(*overrides: str) -> tuple[dict, dict]:
    register_resolvers()
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=list(overrides))
    return (OmegaConf.to_container(cfg.data, resolve=True), OmegaConf.to_container(cfg.model, resolve=True))


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory):
    """The four datasets really built by the synthetic backend (the offline default)."""
    root = tmp_path_factory.mktemp("synthetic_built")
    ensure_dataset("fovit", {"root": str(root / "data"), "cache_dir": str(root / "cache")})
    return root / "data"


def _with_backend(source, target, backend: str):
    """A copy of a built dataset whose card says it was built by ``backend``."""
    shutil.copytree(source, target, symlinks=True)
    card = json.loads((target / "card.json").read_text())
    card["built_with"]["backend"] = backend
    (target / "card.json").write_text(json.dumps(card))
    return target


@pytest.mark.parametrize("preset", ["tiny", "tiny_hf_clip"])
def test_tiny_presets_say_so_and_the_paper_preset_does_not(preset):
    assert _cfg(f"model={preset}")[1]["tiny"] is True
    assert "tiny" not in _cfg("model=llava_llama2_7b_chat")[1]


@pytest.mark.parametrize("row", ROWS)
def test_real_row_on_an_unbuilt_dataset_stops_with_the_build_command(row, tmp_path):
    data, model = _cfg(f"experiment={row}", "init_from=/x.ckpt", f"paths.data_dir={tmp_path}")
    with pytest.raises(ConfigError, match=rf"dataset {row} is not built") as err:
        check_data_for_model(data, model)
    message = str(err.value)
    assert "\n" not in message
    assert "python build_data.py construction=openai construction.images_dir=" in message
    assert not (tmp_path / row).exists()  # nothing was built behind the user's back


@pytest.mark.parametrize("row", ROWS)
def test_real_row_on_a_synthetic_build_stops(row, synthetic_root):
    assert card_backend(synthetic_root / row) == "synthetic"
    data, model = _cfg(f"experiment={row}", "init_from=/x.ckpt", f"paths.data_dir={synthetic_root}")
    with pytest.raises(ConfigError, match=rf"dataset {row} was built by the synthetic backend") as err:
        check_data_for_model(data, model)
    assert REAL_BUILD in str(err.value) and "\n" not in str(err.value)


def test_real_row_on_a_real_build_passes(synthetic_root, tmp_path):
    _with_backend(synthetic_root / "fovit", tmp_path / "fovit", "openai")
    data, model = _cfg("experiment=fovit", "init_from=/x.ckpt", f"paths.data_dir={tmp_path}")
    check_data_for_model(data, model)


def test_real_row_that_builds_with_a_real_backend_on_first_use_passes(tmp_path):
    data, model = _cfg(
        "experiment=foit",
        f"paths.data_dir={tmp_path}",
        "+data.build_overrides=['construction=openai','construction.images_dir=/coco/val2014']",
    )
    check_data_for_model(data, model)


def test_real_preset_on_synthetic_scenes_stops_unless_allowed():
    data, model = _cfg("model=llava_llama2_7b_chat", "data=synthetic")
    with pytest.raises(ConfigError, match="is procedurally drawn scenes"):
        check_data_for_model(data, model)
    check_data_for_model({**data, "allow_synthetic": True}, model)


@pytest.mark.parametrize("data_name", ["synthetic", "fovit"])
def test_tiny_presets_keep_the_synthetic_default(data_name, synthetic_root):
    data, model = _cfg("model=tiny", f"data={data_name}", f"paths.data_dir={synthetic_root}")
    check_data_for_model(data, model)


def test_cli_stops_with_one_line_before_loading_any_weights(tmp_path):
    overrides = ["experiment=nofovit", "init_from=/x.ckpt", f"paths.data_dir={tmp_path / 'd'}"]
    result = run_cli("train.py", *overrides, f"hydra.run.dir={tmp_path / 'run'}", timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "dataset nofovit is not built" in last
    assert "python build_data.py construction=openai construction.images_dir=" in last
    assert "Traceback" not in result.stderr
