"""Training at scale on CPU stand-ins: gradient checkpointing, the grouped sampler under DDP, real LLaVA
samples, and the bad inputs of the scaling switches (too short max_length, GPU presets, wrong resume)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from lvlm.errors import ConfigError
from lvlm.models.presets import build_model
from lvlm.training.devices import check_accelerator
from tests.helpers.cli import run_cli


def loss_and_grads(cfg: dict, checkpointing: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    built = build_model({**cfg, "gradient_checkpointing": checkpointing})
    model = built.model.train()
    ids = torch.randint(5, 200, (2, 24))
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=ids)
    out.loss.backward()
    grads = {n: p.grad.clone() for n, p in model.llm.named_parameters() if p.grad is not None}
    return out.loss.detach(), grads


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(tiny_model_cfg):
    """Tolerance: 1e-6 absolute on the loss and every gradient (recomputation is the same fp32 math)."""
    loss, grads = loss_and_grads(tiny_model_cfg, checkpointing=False)
    loss_ckpt, grads_ckpt = loss_and_grads(tiny_model_cfg, checkpointing=True)
    assert torch.allclose(loss, loss_ckpt, atol=1e-6)
    assert grads.keys() == grads_ckpt.keys() and len(grads) > 10
    for name, grad in grads.items():
        assert torch.allclose(grad, grads_ckpt[name], atol=1e-6), name


def test_gradient_checkpointing_with_lora_trains_the_adapters(tiny_model_cfg):
    cfg = {**tiny_model_cfg, "peft": {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}}
    _, grads = loss_and_grads(cfg, checkpointing=True)
    assert any("lora_" in name for name in grads)


@pytest.mark.slow
def test_two_process_ddp_with_the_grouped_sampler(tmp_path):
    done = run_cli(
        "train.py", "trainer=ddp_cpu", "data.group_by_modality_length=true", "data.synthetic.num_scenes=64",
        "trainer.max_steps=3", "logger=none", "callbacks.progress=null", f"hydra.run.dir={tmp_path}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "last.ckpt").exists()


def llava_instruct_with_images(shared_data: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The real LLaVA-Instruct excerpt (multi-turn); its COCO train2017 images are not in ../shared, so
    each record's image name is given one of the 30 real COCO val2014 images."""
    records = json.loads((shared_data / "llava" / "llava_instruct_100.json").read_text())[:24]
    coco = sorted((shared_data / "coco_images" / "llava_bench_coco_val2014").glob("*.jpg"))
    root = tmp_path / "images"
    for index, record in enumerate(records):
        target = root / record["image"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(coco[index % len(coco)], target)
    path = tmp_path / "instruct.json"
    path.write_text(json.dumps(records))
    return path, root


def test_real_llava_instruct_samples_train(shared_data, tmp_path):
    train_json, image_root = llava_instruct_with_images(shared_data, tmp_path)
    assert any(len(r["conversations"]) > 2 for r in json.loads(train_json.read_text()))  # multi-turn
    done = run_cli(
        "train.py", "data=llava_instruct", f"data.train_json={train_json}", f"data.image_root={image_root}",
        "data.num_workers=0", "data.max_length=640", "data.batch_size=4",
        "data.group_by_modality_length=true", "trainer.max_steps=3", "logger=none",
        "callbacks.progress=null", f"hydra.run.dir={tmp_path / 'run'}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    skipped = json.loads((tmp_path / "run" / "skipped.json").read_text())
    assert skipped["total"] == 0


def test_image_placeholder_moves_to_the_front_as_llava_does(tmp_path):
    from PIL import Image

    from lvlm.data.llava_json import validate_record

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    record = {"id": "r", "image": "a.png", "conversations": [
        {"from": "human", "value": "What is shown? <image>"}, {"from": "gpt", "value": "A square."},
        {"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "Red."},
    ]}  # fmt: skip
    turns = validate_record(record, 0, "x.json", tmp_path)
    assert turns[0][0] == "<image>\nWhat is shown?" and turns[1][0] == "Colour?"


def test_max_length_shorter_than_the_image_tokens_is_one_line(tmp_path):
    done = run_cli("train.py", "data.max_length=8", "logger=none", f"hydra.run.dir={tmp_path}", timeout=300)
    assert done.returncode == 2
    assert "data.max_length=8 leaves no room for text after the 16 image tokens" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("preset", ["gpu", "ddp", "fsdp"])
def test_gpu_presets_on_a_cpu_machine_are_one_line(preset, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    done = run_cli("train.py", f"trainer={preset}", "logger=none", f"hydra.run.dir={tmp_path}", timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "needs CUDA GPUs" in done.stderr and "trainer=cpu" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_accelerator_accepts_cpu_presets():
    check_accelerator({"accelerator": "cpu", "strategy": {"_target_": "DDPStrategy"}})
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="FSDP"):
            check_accelerator({"accelerator": "cpu", "strategy": {"_target_": "x.FSDPStrategy"}})


def test_resume_from_another_model_or_stage_is_one_line(tmp_path):
    first = run_cli(
        "train.py", "trainer.max_steps=2", "logger=none", "data.synthetic.num_scenes=32",
        f"hydra.run.dir={tmp_path / 'a'}",
    )  # fmt: skip
    assert first.returncode == 0, first.stderr[-2000:]
    ckpt = tmp_path / "a" / "checkpoints" / "last.ckpt"
    for override, words in (("stage=pretrain", "another stage"), ("model=tiny_hf_clip", "another model")):
        done = run_cli(
            "train.py", override, f"ckpt_path={ckpt}", "logger=none", "data.synthetic.num_scenes=32",
            f"hydra.run.dir={tmp_path / override.split('=')[1]}",
        )  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]
        assert words in done.stderr and str(ckpt) in done.stderr
        assert "Traceback" not in done.stderr
