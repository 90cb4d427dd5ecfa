"""Study files → steps, the plan and --dry-run, the overlay, and every bad input (fast: nothing trains)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from omegaconf import OmegaConf

from lvlm.study.cli import main
from lvlm.study.configs import check_study_configs, hydra_conf, overlay_text, parse_overrides
from lvlm.study.graph import build_steps, row_train_overrides
from lvlm.study.spec import load_study
from lvlm.study.state import DONE, STALE, TODO, fingerprints, make_plan, write_record
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT
from tests.study.studies import TINY_STEPS, expected_steps, tiny_study, write_study

STUDY_FILES = sorted(REPO_ROOT.glob("experiments/*/study.yaml"))
PAPER_A_STEPS = [
    "build", "train/nofoit/s0", "train/foit/s0", "train/stage1/s0", "train/nofovit/s0", "train/fovit/s0",
    "eval/base/s0", "eval/llava/s0", "eval/nofoit/s0", "eval/foit/s0", "eval/nofovit/s0", "eval/fovit/s0",
    "report",
]  # fmt: skip


@pytest.mark.parametrize("path", STUDY_FILES, ids=[p.parent.name for p in STUDY_FILES])
def test_each_study_file_composes_into_the_expected_steps(path, tmp_path):
    study = load_study(path)
    check_study_configs(study)  # every override composes with conf/
    steps = build_steps(study, tmp_path / study.name)
    raw = yaml.safe_load(path.read_text())
    assert {name: set(step.deps) for name, step in steps.items()} == expected_steps(raw)
    order = list(steps)
    assert all(order.index(dep) < order.index(name) for name, s in steps.items() for dep in s.deps)
    if study.name == "paper_a":
        assert order == PAPER_A_STEPS
        assert steps["eval/base/s0"].overrides[-1] == "seed=0"
        assert "init_from=" + str(tmp_path / "paper_a/train/stage1/s0/checkpoints/last.ckpt") in (
            steps["train/fovit/s0"].overrides
        )
        assert "+logger.wandb.tags=[lvlm,vit,fo]" in steps["train/fovit/s0"].meta


def test_paper_a_exists_with_its_six_rows():
    study = load_study("paper_a")
    assert study.evaluated_rows == ["base", "llava", "nofoit", "foit", "nofovit", "fovit"]
    assert not study.rows["stage1"].evaluated and study.rows["fovit"].init_from == "stage1"
    assert not (REPO_ROOT / "experiments" / "paper_a" / "outputs").exists()


def test_tiny_study_steps(tmp_path):
    study = load_study(write_study(tmp_path, tiny_study()))
    steps = build_steps(study, tmp_path / "out")
    assert list(steps) == TINY_STEPS
    fovit = steps["train/fovit/s0"]
    out = tmp_path / "out"
    assert f"model.llm.name_or_path={out}/export/base/s0/llm" in fovit.overrides
    assert f"++model.tokenizer.name_or_path={out}/export/base/s0/llm" in fovit.overrides
    assert f"init_from={out}/train/stage1/s0/checkpoints/last.ckpt" in fovit.overrides
    assert "model.checkpoint=train/fovit/s0/checkpoints/last.ckpt" in steps["eval/fovit/s0"].overrides
    assert steps["export/base/s0"].overrides[:2] == (
        f"ckpt={out}/train/base/s0/checkpoints/last.ckpt", f"out={out}/export/base/s0",
    )  # fmt: skip


def test_overlay_composes_like_the_command_line(tmp_path):
    """The generated +study_row overlay gives train.py the config the plain overrides give."""
    study = load_study(write_study(tmp_path, tiny_study(train_defaults=["experiment=fovit", "trainer=cpu",
                                                                       "trainer.max_steps=4"])))  # fmt: skip
    row = study.rows["fovit"]
    out = tmp_path / "out"
    texts = row_train_overrides(study, row, out, "${seed}")
    rows_dir = tmp_path / "_rows" / "study_row"
    rows_dir.mkdir(parents=True)
    (rows_dir / "fovit.yaml").write_text(overlay_text(parse_overrides(texts, "t", "fovit", "train"), {}, "x"))
    from hydra import compose

    with hydra_conf():
        via_overlay = compose("train", [f"hydra.searchpath=[file://{tmp_path / '_rows'}]", "+study_row=fovit",
                                        "seed=3"])  # fmt: skip
        plain = compose("train", [*row_train_overrides(study, row, out, "${seed}"), "seed=3"])
    a, b = (OmegaConf.to_container(c, resolve=False) for c in (via_overlay, plain))
    assert a == b
    assert a["model"]["name"] == "llava_llama2_7b_chat" and a["trainer"]["accelerator"] == "cpu"
    assert a["init_from"] == f"{out}/train/stage1/s${{seed}}/checkpoints/last.ckpt"


def test_plan_states_follow_fingerprints_and_dependencies(tmp_path):
    out = tmp_path / "out"
    study = load_study(write_study(tmp_path / "a", tiny_study()))
    steps = build_steps(study, out)
    prints = fingerprints(steps, out)
    assert all(state.state == TODO for state in make_plan(steps, out).values())
    for name, step in steps.items():  # pretend everything finished
        for rel in {
            "train": ["checkpoints/last.ckpt"],
            "eval": ["results.json"],
            "export": ["llm/config.json", "projector.safetensors", "README.md"],
        }.get(step.kind, []):
            (out / name / rel).parent.mkdir(parents=True, exist_ok=True)
            (out / name / rel).write_text("x")  # fmt: skip
        runs = {dep: f"run-{dep}" for dep in step.deps}
        write_record(out / name, {"status": DONE, "fingerprint": prints[name], "deps_run": runs,
                                  "run_id": f"run-{name}"})  # fmt: skip
    assert {e.state for e in make_plan(steps, out).values()} == {DONE}
    # a changed row: that row, what depends on it and the report
    changed = tiny_study()
    changed["rows"]["stage1"]["train"].append("trainer.max_steps=3")
    steps2 = build_steps(load_study(write_study(tmp_path / "b", changed)), out)
    plan = make_plan(steps2, out)
    assert {n for n, e in plan.items() if e.state != DONE} == {"train/stage1/s0", "train/fovit/s0",
                                                               "eval/fovit/s0", "report"}  # fmt: skip
    assert plan["train/stage1/s0"].state == STALE and plan["train/stage1/s0"].reason == "inputs changed"
    # forcing a step reruns its dependents; an interrupted record is to do; a missing output too
    plan = make_plan(steps, out, force={"export/base/s0"})
    assert {n for n, e in plan.items() if e.state != DONE} == {"export/base/s0", "train/fovit/s0",
                                                               "eval/fovit/s0", "report"}  # fmt: skip
    write_record(out / "eval/base/s0", {"status": "interrupted", "fingerprint": prints["eval/base/s0"]})
    (out / "train/stage1/s0/checkpoints/last.ckpt").unlink()
    plan = make_plan(steps, out)
    assert plan["eval/base/s0"].state == TODO and plan["train/stage1/s0"].state == TODO
    assert plan["train/fovit/s0"].state == STALE and plan["train/base/s0"].state == DONE
    # --only: the named step plus what it needs that is not done
    plan = make_plan(steps, out, only={"eval/fovit/s0"})
    assert {n for n, e in plan.items() if e.runs} == {"train/stage1/s0", "train/fovit/s0", "eval/fovit/s0"}


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path):
    path = write_study(tmp_path, tiny_study())
    out = tmp_path / "out"
    result = run_cli("study.py", str(path), "--dry-run", "--out", str(out))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "7 steps — 0 done, 0 stale, 7 to do" in lines[0]
    header = next(i for i, line in enumerate(lines) if line.startswith("step "))
    assert lines[header].split() == ["step", "depends", "on", "state", "command"]
    table = {line.split()[0]: line for line in lines[header + 2 : header + 9]}
    assert list(table) == TINY_STEPS
    assert "export/base/s0, train/stage1/s0  to do: never run  python train.py" in table["train/fovit/s0"]
    assert "init_from=$STUDY/train/stage1/s0/checkpoints/last.ckpt" in table["train/fovit/s0"]
    assert (
        "logger.wandb.group=tiny_study logger.wandb.job_type=train +logger.wandb.tags=[vit,fo]"
        in (table["train/fovit/s0"])
    )
    assert (
        "python export.py ckpt=$STUDY/train/base/s0/checkpoints/last.ckpt out=$STUDY/export/base/s0"
        in (table["export/base/s0"])
    )
    assert "wandb.group=tiny_study wandb.job_type=eval wandb.tags=[llm]" in table["eval/base/s0"]
    launches = [line for line in lines if line.strip()[:2] in {f"{i}." for i in range(1, 10)}]
    assert "+study_row=base,stage1 seed=0" in launches[0] and "export.py" in launches[1]
    assert "+study_row=fovit" in launches[2] and "evaluate.py --multirun" in launches[3]
    assert "+study_eval=base,fovit" in launches[3] and "build_report" in launches[4]
    assert not out.exists(), "--dry-run wrote files"


def test_dry_run_with_only_and_a_bare_study_name(capsys):
    main(["paper_a", "--dry-run", "--only", "train/fovit", "--launcher", "joblib"])
    out = capsys.readouterr().out
    assert "launcher joblib" in out and "hydra/launcher=joblib" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith(("train", "build", "eval"))}
    assert "to do (not selected)" in rows["train/nofoit/s0"] + rows["eval/fovit/s0"]
    assert "not selected" not in rows["build"] + rows["train/stage1/s0"] + rows["train/fovit/s0"]
    assert "+study_row=stage1 seed=0" in out and "+study_row=fovit seed=0" in out


BAD = {
    "unknown llm_from row": (
        {"rows__fovit": {"train": ["stage=finetune"], "llm_from": "bsae", "init_from": "stage1"}},
        "row 'fovit': llm_from names unknown row 'bsae'; fix: did you mean 'base'?",
    ),
    "unknown init_from row": (
        {"rows__fovit": {"train": ["stage=finetune"], "init_from": "stage2"}},
        "row 'fovit': init_from names unknown row 'stage2'; fix:",
    ),
    "unknown option": (
        {"rows__base": {"train": ["stage=text_finetune", "data=nope"]}},
        "row 'base': unknown data option 'nope' in train; fix: use one of ",
    ),
    "unknown key": (
        {"rows__base": {"train": ["trainer.max_stepz=4"]}},
        "row 'base': train overrides do not compose with conf/train.yaml: Could not override "
        "'trainer.max_stepz'",
    ),
    "cycle": (
        {"rows__base": {"train": ["stage=text_finetune"], "init_from": "fovit"}},
        "row 'base': rows start from each other in a cycle (base -> fovit -> base); fix:",
    ),
    "starts from an evaluation-only row": (
        {
            "rows__hf": {"evaluate": ["model.kind=tiny"]},
            "rows__fovit": {"train": ["stage=finetune"], "init_from": "hf"},
        },
        "row 'fovit': init_from row 'hf' is evaluation-only (no train), so it has no trained weights",
    ),
    "llm_from a row that does not train the LLM": (
        {"rows__fovit": {"train": ["stage=finetune"], "llm_from": "stage1"}},
        "row 'fovit': llm_from row 'stage1' does not train the LLM",
    ),
    "init_from a row that trains nothing in common": (
        {"rows__fovit": {"train": ["stage=pretrain", "data.synthetic.max_turns=1"], "init_from": "base"}},
        "row 'fovit': init_from row 'base' trains llm but this row trains projector",
    ),
    "reserved key": (
        {"rows__base": {"train": ["stage=text_finetune", "seed=3"]}},
        "row 'base': train override 'seed=3' sets a key the runner controls; fix: set seeds:",
    ),
    "needs_build without build": (
        {"rows__base": {"train": ["stage=text_finetune"], "needs_build": True}},
        "row 'base': needs_build is true but the study has no build section; fix:",
    ),
    "constructed data without needs_build": (
        {"rows__base": {"train": ["data=fovit"]}, "train_defaults": []},
        "row 'base': trains on constructed data 'fovit' but needs_build is false; fix:",
    ),
    "misspelt row key": (
        {"rows__fovit": {"train": ["stage=finetune"], "init_form": "stage1"}},
        "row 'fovit': unknown key 'init_form' in the row; fix: did you mean 'init_from'?",
    ),
    "row that does nothing": (
        {"rows__extra": {"evaluate": False}},
        "row 'extra': has neither train nor evaluate, so it does nothing; fix:",
    ),
    "report base not evaluated": (
        {"report": {"base": "stage1"}},
        ": report.base row 'stage1' is not evaluated (evaluate: false); fix:",
    ),
    "direction naming a row that is not evaluated": (
        {
            "report": {
                "directions": [{"claim": "c", "system": "all", "lower": ["fovit"], "higher": ["stage1"]}]
            }
        },
        "report.directions 'c' names 'stage1', which is not an evaluated row; fix:",
    ),
    "direction with an unknown system": (
        {"report": {"directions": [{"claim": "c", "system": "most", "lower": "fovit", "higher": "base"}]}},
        "report.directions[0]: unknown system 'most'; fix:",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_study_is_one_line_and_exit_2_before_anything_runs(case, tmp_path, capsys):
    changes, expected = BAD[case]
    path = write_study(tmp_path, tiny_study(**changes))
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main([str(path), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2
    assert len(err.splitlines()) == 1 and err.startswith(f"error: {path}: "), err
    assert expected in err and "; fix: " in err, err
    assert not out.exists()


def test_bad_command_line(tmp_path, capsys):
    path = write_study(tmp_path, tiny_study())
    for argv, expected in (
        ([str(tmp_path / "nowhere")], "no study file found"),
        ([str(path), "--only", "train/nope", "--dry-run"], "--only 'train/nope' names no step"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        err = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_bad_study_through_the_script(tmp_path):
    path = write_study(tmp_path, tiny_study(rows__base={"train": ["data=nope"]}))
    result = run_cli("study.py", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().startswith(f"error: {path}: row 'base': unknown data option 'nope'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_step_record_is_json(tmp_path):
    write_record(tmp_path, {"status": DONE, "path": Path("x")})
    assert json.loads((tmp_path / "step.json").read_text()) == {"status": DONE, "path": "x"}


def test_cluster_settings_come_from_git_ignored_conf_local(tmp_path, monkeypatch):
    from hydra import compose

    from lvlm.study import execute

    local = tmp_path / "launcher"
    local.mkdir()
    (local / "submitit_slurm.yaml").write_text(
        "partition: gpu\ntimeout_min: 1440\nadditional_parameters: {qos: normal}\n"
    )
    monkeypatch.setattr(execute, "LOCAL_LAUNCHER_DIR", local)
    assert execute.launcher_overrides("basic") == []
    overrides = execute.launcher_overrides("submitit_slurm")
    assert overrides == ["hydra/launcher=submitit_slurm", "++hydra.launcher.partition=gpu",
                         "++hydra.launcher.timeout_min=1440",
                         "++hydra.launcher.additional_parameters.qos=normal"]  # fmt: skip
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    with hydra_conf():
        cfg = compose("train", overrides=overrides, return_hydra_config=True)
    assert cfg.hydra.launcher.partition == "gpu" and cfg.hydra.launcher.additional_parameters.qos == "normal"
