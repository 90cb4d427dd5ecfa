"""export.py: a tiny LoRA checkpoint trained with train.py, exported, reloaded with transformers alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.helpers.cli import run_cli

PROMPT = 'If a movie review is positive, you need to output "positive".\nMovie review: fine.\nAnswer:'


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A checkpoint of the tiny default with LoRA adapters, after 3 steps of train.py."""
    run_dir = tmp_path_factory.mktemp("export_run") / "run"
    result = run_cli(
        "train.py", "model/peft=lora_tiny", "trainer.max_steps=3", "data.synthetic.num_scenes=32",
        "trainer.num_sanity_val_steps=0", "logger=none", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def exported(trained, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export_out") / "model"
    result = run_cli("export.py", f"ckpt={trained}", f"out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "LoRA merged: true" in result.stdout
    return out


def test_export_writes_hf_llm_projector_vision_config_and_card(exported, trained):
    from safetensors.torch import load_file

    llm = exported / "llm"
    for name in ("config.json", "model.safetensors", "generation_config.json", "tokenizer_config.json"):
        assert (llm / name).is_file(), name
    assert not list(exported.parent.glob(".model.partial-*")), "partial folder left behind"
    ckpt = torch.load(trained, map_location="cpu", weights_only=False)
    projector = load_file(str(exported / "projector.safetensors"))
    for key, value in projector.items():
        assert torch.equal(value, ckpt["state_dict"][f"model.projector.{key}"]), key
    vision = json.loads((exported / "vision_config.json").read_text())
    assert vision == {**ckpt["lvlm"]["base"]["model"]["vision"], **{k: vision[k] for k in
                      ("image_size", "num_patches", "hidden_size", "mean", "std")}}  # fmt: skip
    assert vision["model_name"] == "lvlm-tiny-vit" and vision["num_patches"] == 16
    card = (exported / "README.md").read_text()
    for fact in ("tiny random Llama", "llava_llama_2", "finetune", "synthetic", "LoRA r=8", "Licence",
                 str(trained.parent.parent)):  # fmt: skip
        assert fact in card, fact
    provenance = json.loads((exported / "export.json").read_text())
    assert provenance["lora"]["merged"] is True and provenance["template"] == "llava_llama_2"


def test_transformers_alone_reproduces_the_llm_logits(exported, trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from lvlm.models.checkpoint import load_lvlm_checkpoint

    tokenizer = AutoTokenizer.from_pretrained(exported / "llm")
    model = AutoModelForCausalLM.from_pretrained(exported / "llm").eval()
    built = load_lvlm_checkpoint(trained)
    project_llm = built.model.llm.eval()
    text = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                         add_generation_prompt=True)  # fmt: skip
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert ids == built.tokenizer(text, add_special_tokens=False)["input_ids"]
    batch = torch.tensor([ids])
    with torch.no_grad():
        ours = project_llm(input_ids=batch).logits
        theirs = model(input_ids=batch).logits
        with project_llm.disable_adapter():
            without_lora = project_llm(input_ids=batch).logits
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=0)
    assert (theirs - without_lora).abs().max() > 1e-3, "the merged LoRA weights had no effect"


def test_chat_template_is_the_training_template(exported):
    from transformers import AutoTokenizer

    from lvlm.templates import LLAVA_SYSTEM_PROMPT, get_template

    tokenizer = AutoTokenizer.from_pretrained(exported / "llm")
    render = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False,
                                           add_generation_prompt=True)  # fmt: skip
    assert render == get_template("llava_llama_2").generation_prompt(PROMPT)
    assert LLAVA_SYSTEM_PROMPT in render
    own = tokenizer.apply_chat_template(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert own == "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nhi [/INST]"


@pytest.mark.slow
def test_hf_kind_predicts_like_the_checkpoint_kind(exported, trained, tmp_path):
    """The exported LLM through model.kind=hf (its chat template = the training template, which carries the
    LLaVA system prompt) gives the checkpoint kind's predictions on the same prompts."""
    common = ["eval.limit=2", "eval.tasks=[sst2]", "wandb.enabled=false", "cache.enabled=false"]
    runs = {
        "hf": ["model.kind=hf", f"model.name_or_path={exported / 'llm'}", "model.use_chat_template=true"],
        "checkpoint": ["model.kind=checkpoint", f"model.checkpoint={trained}"],
    }
    samples = {}
    for kind, overrides in runs.items():
        result = run_cli("evaluate.py", *overrides, *common, f"hydra.run.dir={tmp_path / kind}")
        assert result.returncode == 0, result.stderr[-3000:]
        lines = (tmp_path / kind / "samples.jsonl").read_text().splitlines()
        samples[kind] = [(r["uid"], r["set"], r["raw"]) for r in map(json.loads, lines)]
    assert len(samples["hf"]) == 24
    assert samples["hf"] == samples["checkpoint"]


def test_bad_input_is_one_line_and_exit_2(tmp_path, trained, capsys):
    from lvlm.export.cli import main

    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(b"not a torch file")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    cases = {
        "missing": ([f"ckpt={tmp_path / 'nope.ckpt'}", f"out={tmp_path / 'o1'}"], "checkpoint not found"),
        "broken": ([f"ckpt={broken}", f"out={tmp_path / 'o2'}"], "truncated or not a torch file"),
        "busy out": ([f"ckpt={trained}", f"out={busy}"], "exists and is not empty; fix: pass overwrite=true"),
        "unknown key": ([f"ckpt={trained}", "outt=x"], "unknown argument 'outt=x'"),
        "no out": ([f"ckpt={trained}"], "missing out="),
    }
    for name, (argv, expected) in cases.items():
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2, name
        assert len(err.splitlines()) == 1 and err.startswith("error: ") and expected in err, (name, err)
    assert (busy / "keep.txt").exists() and not (tmp_path / "o1").exists()


def test_help_and_cli_exit_code(tmp_path):
    result = run_cli("export.py", "--help")
    assert result.returncode == 0 and "ckpt=" in result.stdout and "overwrite=true" in result.stdout
    result = run_cli("export.py", f"ckpt={tmp_path / 'missing.ckpt'}", f"out={tmp_path / 'o'}")
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
