"""FOVIT / NoFOVIT / FOIT / NoFOIT construction with the offline synthetic backend.

Covers the four datasets' structure (FO/NoFO pairing on id, image and question; IT variants carry the caption
and no image; every FO answer passes its checker), the cards, regeneration and dropping of non-compliant
answers, counted skips (corrupt images, refusals, empty answers), kill-and-resume without repeated work, the
settings guard on resume, and the ``build_data.py`` CLI.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

from lvlm.construction.backends.base import Feedback, ImageItem, QADraft
from lvlm.construction.backends.synthetic import SyntheticGenerator, make_question
from lvlm.construction.catalogue.checkers import check
from lvlm.construction.catalogue.instructions import build_library, load_library
from lvlm.construction.pipeline import build as build_module
from lvlm.construction.pipeline.build import build_datasets, ensure_dataset
from lvlm.construction.pipeline.inputs import assign_instructions, list_image_folder
from lvlm.construction.pipeline.stages import StageStore
from lvlm.data.scene import Scene, SceneObject
from lvlm.data.synthetic import ensure_synthetic_dataset
from lvlm.errors import ConfigError, DataError, LvlmError
from tests.helpers.cli import run_cli
from tests.helpers.paths import REPO_ROOT

NUM_SCENES = 24
NAMES = ("fovit", "nofovit", "foit", "nofoit")


def compose_cfg(root: Path, *overrides: str) -> DictConfig:
    with initialize_config_dir(str(REPO_ROOT / "conf"), version_base="1.3"):
        return compose("build_data", overrides=[f"paths.root={root}", "progress=false", *overrides])


def synthetic_cfg(root: Path, scenes: Path, *overrides: str) -> DictConfig:
    return compose_cfg(
        root, f"construction.images_dir={scenes}", f"construction.sample_size={NUM_SCENES}", *overrides
    )


def load(directory: Path, name: str) -> Any:
    path = directory / name
    if path.suffix == ".jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return json.loads(path.read_text(encoding="utf-8"))


def split_prompt(value: str) -> tuple[str, str]:
    """(context line, request) of a human turn."""
    context, _, request = value.partition("\n")
    return context, request


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ensure_synthetic_dataset(
        tmp_path_factory.mktemp("scenes"), num_scenes=NUM_SCENES, seed=3, image_size=32
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, scenes: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("build")
    return build_datasets(synthetic_cfg(root, scenes))


def test_four_datasets_share_ids_images_and_questions(built: dict[str, Path]) -> None:
    data = {name: load(built[name], "train.json") for name in NAMES}
    assert len(data["fovit"]) == NUM_SCENES
    ids = [[record["id"] for record in data[name]] for name in NAMES]
    assert all(column == ids[0] for column in ids)
    assert [r["image"] for r in data["fovit"]] == [r["image"] for r in data["nofovit"]]
    library = {instr.id: instr for instr in load_library(built["fovit"] / "format_instructions.json")}
    meta = {m["id"]: m for m in load(built["fovit"], "meta.jsonl")}
    for fo, nofo in zip(data["fovit"], data["nofovit"], strict=True):
        fo_context, fo_request = split_prompt(fo["conversations"][0]["value"])
        nofo_context, question = split_prompt(nofo["conversations"][0]["value"])
        assert fo_context == nofo_context == "<image>"
        instruction = library[meta[fo["id"]]["instruction_id"]]
        assert fo_request == f"{instruction.text} {question}"
        assert [turn["from"] for turn in fo["conversations"]] == ["human", "gpt"]
        assert fo["conversations"][1]["value"] != nofo["conversations"][1]["value"]


def test_every_formatted_answer_passes_its_checker(built: dict[str, Path]) -> None:
    library = {instr.id: instr for instr in load_library(built["foit"] / "format_instructions.json")}
    meta = {m["id"]: m for m in load(built["foit"], "meta.jsonl")}
    for record in load(built["foit"], "train.json"):
        instruction = library[meta[record["id"]]["instruction_id"]]
        question = split_prompt(record["conversations"][0]["value"])[1][len(instruction.text) + 1 :]
        verdict = check(instruction, record["conversations"][1]["value"], request=question)
        assert verdict.ok, (record["id"], instruction.kind, verdict.reason)


def test_text_variants_carry_the_caption_and_no_image(built: dict[str, Path], scenes: Path) -> None:
    foit, fovit = load(built["foit"], "train.json"), load(built["fovit"], "train.json")
    nofoit = load(built["nofoit"], "train.json")
    assert not (built["foit"] / "images").exists()
    for text_fo, text_nofo, vision in zip(foit, nofoit, fovit, strict=True):
        assert "image" not in text_fo and "image" not in text_nofo
        for record in (text_fo, text_nofo):
            context, _request = split_prompt(record["conversations"][0]["value"])
            assert context.startswith("Caption: A synthetic picture with a ")
            assert "<image>" not in record["conversations"][0]["value"]
        assert (
            split_prompt(text_fo["conversations"][0]["value"])[1]
            == split_prompt(vision["conversations"][0]["value"])[1]
        )
        assert text_fo["conversations"][1] == vision["conversations"][1]


def test_vision_images_are_relative_links_to_the_sources(built: dict[str, Path], scenes: Path) -> None:
    for name in ("fovit", "nofovit"):
        for record in load(built[name], "train.json"):
            path = built[name] / record["image"]
            assert path.is_symlink() and not Path(path.readlink()).is_absolute()
            assert path.resolve() == (scenes / "images" / Path(record["image"]).name).resolve()


def test_cards_report_counts_compliance_lengths_and_prompts(built: dict[str, Path]) -> None:
    card = load(built["fovit"], "card.json")
    assert card["num_samples"] == NUM_SCENES and card["paired_with"] == "nofovit"
    assert card["compliance"]["attempted"] == NUM_SCENES
    assert card["compliance"]["after_retries_rate"] == 1.0
    assert 0.0 < card["compliance"]["first_try_rate"] <= 1.0
    assert sum(card["instruction_distribution"].values()) == NUM_SCENES
    assert card["distinct_instructions"] == NUM_SCENES  # balanced assignment: 24 items, 100 instructions
    assert card["instruction_library"]["size"] == 100
    lengths = card["answer_length_words"]
    assert lengths["fo"]["count"] == lengths["nofo"]["count"] == NUM_SCENES
    assert lengths["nofo"]["median"] <= lengths["nofo"]["p95"]
    assert card["skipped"] == {"total": 0}
    assert card["generator"]["backend"] == "synthetic" and card["generator"]["prompts"]
    assert card["seeds"]["seed"] == 0 and card["usage"]["runs"] == 1
    text_card = load(built["nofoit"], "card.json")
    assert "instruction_distribution" not in text_card and text_card["modality"] == "caption text"
    markdown = (built["fovit"] / "card.md").read_text(encoding="utf-8")
    assert "# Dataset card: fovit" in markdown and "Answer length (words)" in markdown


def test_instruction_assignment_is_balanced_and_seeded() -> None:
    library = build_library(n=100, seed=0)
    items = [ImageItem(f"img{i}", Path(f"/x/{i}.png"), f"{i}.png") for i in range(250)]
    first = assign_instructions(items, library, seed=1)
    assert first == assign_instructions(items, library, seed=1)
    assert first != assign_instructions(items, library, seed=2)
    assert set(Counter(first.values()).values()) == {2, 3}


def test_synthetic_questions_are_answered_from_the_scene() -> None:
    rng = random.Random(0)
    scene = Scene(
        "s",
        "images/s.png",
        "gray",
        (
            SceneObject("circle", "red", "small", "top", "left"),
            SceneObject("circle", "blue", "large", "bottom", "right"),
        ),
    )
    seen = set()
    for _ in range(60):
        question, answer, _support = make_question(scene, rng)
        seen.add(question)
        if question.startswith("How many shapes"):
            assert "2 shapes" in answer
        if question.startswith("How many circles"):
            assert "2 circles" in answer
        if "colour is the circle at the top left" in question:
            assert answer.endswith("is red.")
        if question.startswith("What colour is the background"):
            assert "gray" in answer
    assert len(seen) >= 5


def failing_answer(instruction: Any, question: str) -> str:
    """A short answer that breaks ``instruction`` (no single text breaks every instruction)."""
    candidates = ("x", "NO, NOT THIS ONE.", "Short line. " * 40, "word, " * 300 + "end", '{"a": 1}')
    return next(text for text in candidates if not check(instruction, text, request=question).ok)


class ScriptedGenerator:
    """Wraps the synthetic generator: scripted bad replies, call counting, and a simulated kill."""

    def __init__(self, inner: SyntheticGenerator, **script: Any) -> None:
        self.inner, self.backend = inner, inner.backend
        self.bad_first = set(script.get("bad_first", ()))
        self.always_bad = set(script.get("always_bad", ()))
        self.refuse = set(script.get("refuse", ()))
        self.empty_caption = set(script.get("empty_caption", ()))
        self.kill_after = script.get("kill_after")
        self.calls: Counter[str] = Counter()
        self.feedback: list[Feedback] = []

    async def caption(self, item: ImageItem) -> str:
        self.calls["caption"] += 1
        return "   " if item.id in self.empty_caption else await self.inner.caption(item)

    async def question_answer(
        self, item: ImageItem, caption: str, instruction: Any, feedback: Any
    ) -> QADraft:
        if self.kill_after is not None and self.calls["question_answer"] >= self.kill_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls["question_answer"] += 1
        if feedback is not None:
            self.feedback.append(feedback)
        draft = await self.inner.question_answer(item, caption, instruction, feedback)
        if item.id in self.always_bad or (item.id in self.bad_first and feedback is None):
            bad = failing_answer(instruction, draft.question)
            return QADraft(draft.question, bad, bad)
        return draft

    async def answer(self, item: ImageItem, caption: str, question: str) -> str:
        self.calls["answer"] += 1
        if item.id in self.refuse:
            return "I'm sorry, but I can't help with that."
        return await self.inner.answer(item, caption, question)

    def describe(self) -> dict:
        return self.inner.describe()

    def usage_summary(self) -> dict:
        return {"requests": sum(self.calls.values())}

    async def aclose(self) -> None:
        return None


def scripted(monkeypatch: pytest.MonkeyPatch, **script: Any) -> ScriptedGenerator:
    generator = ScriptedGenerator(SyntheticGenerator(seed=0), **script)
    monkeypatch.setattr(build_module, "make_generator", lambda cfg: generator)
    return generator


def test_noncompliant_answers_are_regenerated_then_dropped(
    tmp_path: Path, scenes: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = sorted(scene.id for scene in _scenes(scenes))
    generator = scripted(monkeypatch, bad_first=ids[:5], always_bad=ids[5:7], refuse=ids[7:8])
    paths = build_datasets(synthetic_cfg(tmp_path, scenes, "max_format_retries=2"))
    card = load(paths["fovit"], "card.json")
    assert card["compliance"]["compliant_first_try"] == NUM_SCENES - 7
    assert card["compliance"]["regenerated"] == 5
    assert card["compliance"]["compliant_after_retries"] == NUM_SCENES - 2
    assert card["skipped"] == {"total": 3, "question_answer:noncompliant": 2, "answer:refusal": 1}
    assert card["compliance"]["attempts_histogram"]["3"] == 2  # 1 try + max_format_retries=2
    assert all(
        fb.reason and fb.previous is not None and fb.previous.answer != "" for fb in generator.feedback
    )
    for name in NAMES:
        kept = {record["id"] for record in load(paths[name], "train.json")}
        assert kept == set(ids) - set(ids[5:8])


def _scenes(root: Path) -> list[Scene]:
    from lvlm.data.scene import read_scenes

    return read_scenes(root / "scenes.jsonl")


def test_corrupt_image_and_empty_caption_are_counted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenes = ensure_synthetic_dataset(tmp_path / "scenes", num_scenes=6, seed=1, image_size=32)
    ids = sorted(scene.id for scene in _scenes(scenes))
    (scenes / "images" / f"{ids[0]}.png").write_bytes(b"not a png at all")
    scripted(monkeypatch, empty_caption=ids[1:2])
    paths = build_datasets(compose_cfg(tmp_path, f"construction.images_dir={scenes}"))
    card = load(paths["nofovit"], "card.json")
    assert card["skipped"] == {"total": 2, "caption:corrupt_image": 1, "caption:empty_caption": 1}
    assert card["num_samples"] == 4
    stage = {r["id"]: r for r in load(tmp_path / "data" / "stages", "caption.jsonl")}
    assert "cannot decode image" in stage[ids[0]]["detail"]


def test_kill_mid_stage_then_resume_repeats_no_work(
    tmp_path: Path, scenes: Path, monkeypatch: pytest.MonkeyPatch, built: dict[str, Path]
) -> None:
    killed = scripted(monkeypatch, kill_after=9)
    cfg = synthetic_cfg(tmp_path, scenes)
    with pytest.raises(KeyboardInterrupt):
        build_datasets(cfg)
    assert len(StageStore(tmp_path / "data" / "stages" / "question_answer.jsonl").load()) == 9
    assert not (tmp_path / "data" / "fovit" / "train.json").exists()
    resumed = scripted(monkeypatch)
    paths = build_datasets(cfg)
    assert killed.calls["caption"] == NUM_SCENES and resumed.calls["caption"] == 0
    assert resumed.calls["question_answer"] == NUM_SCENES - 9
    for name in NAMES:
        for file in ("train.json", "meta.jsonl"):
            assert (paths[name] / file).read_text() == (built[name] / file).read_text()
    assert load(paths["fovit"], "card.json")["usage"]["runs"] == 2


def test_torn_last_stage_line_is_cut_and_redone(tmp_path: Path) -> None:
    path = tmp_path / "answer.jsonl"
    path.write_text('{"id": "a", "status": "ok"}\n{"id": "b", "sta', encoding="utf-8")
    assert list(StageStore(path).load()) == ["a"]
    assert path.read_text(encoding="utf-8") == '{"id": "a", "status": "ok"}\n'
    path.write_text('{"id": "a"}\nnot json\n{"id": "c"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"answer.jsonl: record 2: malformed stage record"):
        StageStore(path).load()


def test_resume_with_different_settings_is_refused(tmp_path: Path, scenes: Path) -> None:
    build_datasets(synthetic_cfg(tmp_path, scenes, "construction.sample_size=4"))
    with pytest.raises(
        ConfigError, match=r"plan.json: the finished stages were built with different .*seed; fix: "
    ):
        build_datasets(synthetic_cfg(tmp_path, scenes, "construction.sample_size=4", "seed=1"))
    rebuilt = build_datasets(
        synthetic_cfg(tmp_path, scenes, "construction.sample_size=4", "seed=1", "overwrite=true")
    )
    assert load(rebuilt["fovit"], "card.json")["seeds"]["seed"] == 1


def test_copy_mode_copies_images_and_missing_settings_are_named(tmp_path: Path, scenes: Path) -> None:
    paths = build_datasets(synthetic_cfg(tmp_path, scenes, "construction.sample_size=3", "image_mode=copy"))
    copied = [paths["nofovit"] / r["image"] for r in load(paths["nofovit"], "train.json")]
    assert len(copied) == 3 and all(p.is_file() and not p.is_symlink() for p in copied)
    assert load(paths["fovit"], "card.json")["images"]["mode"] == "copy"
    with pytest.raises(ConfigError, match=r"construction.model: required for backend 'hf'; fix: pass "):
        build_datasets(compose_cfg(tmp_path / "hf", "construction=hf", f"construction.images_dir={scenes}"))
    with pytest.raises(
        LvlmError, match="unknown construction backend 'gpt'; valid construction backend names"
    ):
        build_datasets(compose_cfg(tmp_path / "bad", "construction.backend=gpt"))


def test_empty_or_missing_image_folder_is_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"empty: no images .* found; fix: point construction.images_dir"):
        list_image_folder(tmp_path / "empty")
    with pytest.raises(DataError, match="image folder not found"):
        list_image_folder(tmp_path / "missing")


def test_ensure_dataset_builds_on_first_use_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data_cfg = {  # a training data config (conf/data/foit.yaml) with a small offline build
        "name": "foit",
        "kind": "constructed",
        "dataset": "foit",
        "root": str(tmp_path / "data"),
        "cache_dir": str(tmp_path / ".cache"),
        "build_overrides": ["construction.num_scenes=6", "construction.sample_size=6", "progress=false"],
    }
    first = ensure_dataset("foit", data_cfg)
    assert first == tmp_path / "data" / "foit" and len(load(first, "train.json")) == 6
    assert (tmp_path / ".cache" / "synthetic_scenes").is_dir()
    assert all((tmp_path / "data" / name / "card.json").is_file() for name in NAMES)
    monkeypatch.setattr(
        build_module, "build_datasets", lambda cfg: pytest.fail("rebuilt an existing dataset")
    )
    assert ensure_dataset("foit", data_cfg) == first
    assert ensure_dataset("nofoit", compose_cfg(tmp_path)) == tmp_path / "data" / "nofoit"
    with pytest.raises(LvlmError, match="unknown dataset 'fovitt'; valid dataset names: foit, fovit"):
        ensure_dataset("fovitt", data_cfg)


def test_cli_builds_all_four_and_reports(tmp_path: Path) -> None:
    result = run_cli(
        "build_data.py", f"paths.root={tmp_path}", "construction.num_scenes=8", "construction.sample_size=8",
        "progress=false", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    for name in NAMES:
        assert name in result.stdout and (tmp_path / "data" / name / "card.md").is_file()
    assert f"card: {tmp_path / 'data' / 'fovit' / 'card.md'}" in result.stdout
    config = next((tmp_path / "outputs" / "build_data").glob("*/config.yaml")).read_text()
    assert f"output_dir: {tmp_path / 'data'}" in config


def test_cli_user_error_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli(
        "build_data.py", f"paths.root={tmp_path}", "construction=openai",
        f"construction.images_dir={tmp_path / 'empty'}", cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "no images" in lines[0], result.stderr
