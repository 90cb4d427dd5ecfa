"""``evaluate.py`` end to end: tiny default, lvlm checkpoints, HF models by path, torchrun, resume, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import LlamaConfig, LlamaForCausalLM

from lvlm.eval.models.hf import HFScoringModel
from lvlm.eval.runner import evaluate
from lvlm.eval.tasks.definitions import load_eval_config
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

QUICK = ["eval.tasks=[sst2,rte]", "eval.limit=4", "bootstrap.n_resamples=50", "wandb.enabled=false"]


def _results(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def _comparable(results: dict) -> dict:
    return {k: v for k, v in results.items() if k not in ("config", "git_hash")}


@pytest.fixture(scope="module")
def saved_hf_model(tmp_path_factory, tiny_tokenizer) -> Path:
    path = tmp_path_factory.mktemp("hf_model")
    tok = tiny_tokenizer
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=2, eos_token_id=tok.eos_token_id,
                         bos_token_id=tok.bos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.mark.slow
def test_tiny_default_writes_results_samples_table_and_wandb(tmp_path):
    args = ["eval.tasks=[sst2,rte]", "eval.limit=4", "cache.enabled=false", f"hydra.run.dir={tmp_path}"]
    result = run_cli("evaluate.py", *args)
    assert result.returncode == 0, result.stderr[-2000:]
    results = _results(tmp_path)
    for key in ("natural", "neutral", "unnatural", "all"):
        assert 0.0 <= results["summary"][key]["f1"] <= 1.0
    assert results["smoke_data"] is True and "WARNING  : smoke data" in result.stdout
    samples = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(samples) == 2 * 4 * 12 == results["n_predictions"]
    assert "| Natural |" in (tmp_path / "results.md").read_text()
    assert len(list((tmp_path / "wandb").glob("offline-run-*"))) == 1


@pytest.mark.slow
def test_checkpoint_and_hf_models_on_real_files(tmp_path, shared_data, saved_hf_model):
    train_dir = tmp_path / "train"
    trained = run_cli("train.py", "trainer.max_steps=3", "trainer.max_epochs=-1", "logger=none",
                      "~callbacks.progress", f"hydra.run.dir={train_dir}")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    real = [f"eval.data_dir={shared_data}", "eval.source=local", *QUICK]
    checkpoint = f"model.checkpoint={train_dir}/checkpoints/last.ckpt"
    ckpt = run_cli(
        "evaluate.py", "model.kind=checkpoint", checkpoint, *real, f"hydra.run.dir={tmp_path / 'ckpt'}"
    )
    assert ckpt.returncode == 0, ckpt.stderr[-2000:]
    hf = run_cli("evaluate.py", "model.kind=hf", f"model.name_or_path={saved_hf_model}", *real,
                 f"hydra.run.dir={tmp_path / 'hf'}")  # fmt: skip
    assert hf.returncode == 0, hf.stderr[-2000:]
    for run in ("ckpt", "hf"):
        results = _results(tmp_path / run)
        assert results["smoke_data"] is False
        assert results["data"]["sst2"]["source"].startswith("local:")
        assert results["n_predictions"] == 2 * 4 * 12
    assert _results(tmp_path / "ckpt")["model_fingerprint"] != _results(tmp_path / "hf")["model_fingerprint"]


@pytest.mark.slow
def test_torchrun_two_processes_match_one(tmp_path, saved_hf_model):
    common = ["model.kind=hf", f"model.name_or_path={saved_hf_model}", "cache.enabled=false", *QUICK]
    single = run_cli("evaluate.py", *common, f"hydra.run.dir={tmp_path / 'one'}")
    assert single.returncode == 0, single.stderr[-2000:]
    torchrun = Path(sys.executable).parent / "torchrun"
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", WANDB_MODE="offline")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", str(REPO_ROOT / "evaluate.py"), *common,
           f"hydra.run.dir={tmp_path / 'two'}"]  # fmt: skip
    double = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=REPO_ROOT)
    assert double.returncode == 0, double.stderr[-3000:]
    assert _comparable(_results(tmp_path / "two")) == _comparable(_results(tmp_path / "one"))
    info = json.loads((tmp_path / "two" / "run_info.json").read_text())
    assert info["stats"]["world_size"] == 2


class _Interrupt(RuntimeError):
    pass


def test_killed_evaluation_resumes_with_identical_results(tmp_path, saved_hf_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = HFScoringModel(AutoModelForCausalLM.from_pretrained(saved_hf_model),
                           AutoTokenizer.from_pretrained(saved_hf_model))  # fmt: skip
    eval_cfg = load_eval_config(["eval.tasks=[sst2,rte]", "eval.limit=6", "eval.batch_size=4"])
    kwargs = {"config": {"test": True}, "progress": False}
    clean, _ = evaluate(eval_cfg, model, tmp_path / "clean", cache_dir=tmp_path / "cache_clean", **kwargs)

    forward, calls = model.forward, {"n": 0}

    def dying_forward(*args, **kw):
        calls["n"] += 1
        if calls["n"] > 40:
            raise _Interrupt("killed")
        return forward(*args, **kw)

    model.forward = dying_forward
    with pytest.raises(_Interrupt):
        evaluate(eval_cfg, model, tmp_path / "killed", cache_dir=tmp_path / "cache", **kwargs)
    model.forward = forward
    resumed, stats = evaluate(eval_cfg, model, tmp_path / "resumed", cache_dir=tmp_path / "cache", **kwargs)
    assert 0 < stats["cached"] < stats["prompts"] and stats["cached"] + stats["computed"] == stats["prompts"]
    assert resumed.results_json.read_text() == clean.results_json.read_text().replace(
        str(tmp_path / "clean"), str(tmp_path / "resumed")
    )


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("eval.tasks=[sst2,nope]", "unknown task 'nope'; valid task names: emotion, fp, mrpc"),
        ("eval.label_systems=[natural,weird]", "unknown label system 'weird'; valid label system names"),
        ("eval.scorer=beam", "unknown scorer 'beam'; valid scorer names: generate, loglikelihood"),
        ("model.kind=onnx", "valid model.kind names: checkpoint, hf, hf_vlm, llava_original, tiny"),
    ],
)
def test_unknown_names_are_one_line_errors(tmp_path, override, message):
    result = run_cli("evaluate.py", override, "wandb.enabled=false", f"hydra.run.dir={tmp_path}", timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
