"""Benchmark: our log-likelihood scorer vs lm-evaluation-harness (HFLM) on the same model and prompts.

1. Creates ``benchmarks/.venv-lmeval`` (git-ignored) if missing and installs ``lm-eval[hf]==0.4.13`` with
   the project's torch/transformers/tokenizers versions into it (pip finds torch on local disk).
2. Builds the fixed benchmark model of ``bench_generate.py`` and saves model + tokenizer to
   ``benchmarks/out/loglik_model`` (git-ignored).
3. Renders SST-2 validation prompts under one natural, one neutral and one unnatural verbalizer set,
   chat-wrapped by the model's template; each (prompt, word) pair is one log-likelihood request.
4. In the lm-eval venv (this same file, ``--worker``): times ``HFLM.loglikelihood`` on the requests, and
   a whole ``simple_evaluate`` run over three local multiple-choice tasks with acc + F1 and 1,000
   bootstrap iterations (their F1 stderr bootstrap).
5. In-process: times our ``loglikelihood`` scorer, and our whole evaluation (model load, scoring, metrics,
   1,000-resample bootstrap CIs), then compares per-request log-likelihoods and throughput.

Run: ``.venv/bin/python benchmarks/bench_loglik_vs_lmeval.py [--sentences 872]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
LMEVAL_VENV = HERE / ".venv-lmeval"
OUT_DIR = HERE / "out"
PINNED = ["lm-eval[hf]==0.4.13", "torch==2.14.1", "transformers==5.23.0", "tokenizers==0.23.3"]
OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
TASK_YAML = """task: {name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: context
doc_to_choice: choices
doc_to_target: gold
target_delimiter: " "
metric_list:
  - metric: acc
  - metric: f1
"""


def ensure_lmeval_venv() -> Path:
    """The lm-eval interpreter, creating the venv from the same pinned wheels when it is missing."""
    python = LMEVAL_VENV / "bin" / "python"
    if python.exists():
        return python
    print(f"creating {LMEVAL_VENV} (lm-eval and the project's torch/transformers; a few minutes)", flush=True)
    base = Path(getattr(sys, "_base_executable", sys.executable))
    subprocess.run([str(base), "-m", "venv", str(LMEVAL_VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *PINNED], check=True)
    return python


# ----------------------------------------------------------------------------------------------- worker side
def time_their_metrics(spec: dict, loglikelihoods: list[float]) -> float:
    """Seconds lm-eval's own aggregations take for our label sets: acc + stderr, F1 + bootstrap stderr."""
    from lm_eval.api.metrics import bootstrap_stderr, f1_score, mean, mean_stderr

    by_set: dict[str, list[tuple[int, int]]] = {}
    for index, (set_name, gold) in enumerate(spec["items"]):
        first, second = loglikelihoods[2 * index], loglikelihoods[2 * index + 1]
        by_set.setdefault(set_name, []).append((gold, 0 if first >= second else 1))
    start = time.perf_counter()
    for pairs in by_set.values():
        correct = [float(gold == pred) for gold, pred in pairs]
        mean(correct), mean_stderr(correct), f1_score(pairs)
        bootstrap_stderr(f1_score, pairs, iters=spec["bootstrap_iters"])
    return time.perf_counter() - start


def worker(spec_path: Path) -> None:
    """Runs inside the lm-eval venv: time HFLM.loglikelihood and a whole simple_evaluate run."""
    import torch
    from lm_eval import simple_evaluate
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    spec = json.loads(spec_path.read_text())
    torch.set_num_threads(spec["threads"])
    start = time.perf_counter()
    lm = HFLM(pretrained=spec["model_dir"], device="cpu", dtype="float32", batch_size=spec["batch_size"])
    load_seconds = time.perf_counter() - start
    requests = [
        Instance(request_type="loglikelihood", doc={}, arguments=(context, continuation), idx=index)
        for index, (context, continuation) in enumerate(spec["requests"])
    ]
    loglik_seconds = []
    for _ in range(spec["repeats"]):
        start = time.perf_counter()
        scores = lm.loglikelihood(requests, disable_tqdm=True)
        loglik_seconds.append(time.perf_counter() - start)
    metric_seconds = time_their_metrics(spec, [float(score[0]) for score in scores])
    start = time.perf_counter()
    lm_whole = HFLM(
        pretrained=spec["model_dir"], device="cpu", dtype="float32", batch_size=spec["batch_size"]
    )
    manager = TaskManager(include_path=spec["task_dir"])
    output = simple_evaluate(
        model=lm_whole,
        tasks=spec["task_names"],
        task_manager=manager,
        bootstrap_iters=spec["bootstrap_iters"],
        log_samples=False,
        verbosity="ERROR",
    )
    whole_seconds = time.perf_counter() - start
    result = {
        "loglikelihoods": [float(score[0]) for score in scores],
        "load_seconds": load_seconds,
        "loglik_seconds": loglik_seconds,
        "whole_seconds": whole_seconds,
        "metric_seconds": metric_seconds,
        "metrics": {name: output["results"][name] for name in spec["task_names"]},
    }
    Path(spec["result_path"]).write_text(json.dumps(result, default=str))


# ------------------------------------------------------------------------------------------------- our side
def prepare(args: argparse.Namespace, sentences: int):
    """Build + save the benchmark model, render the prompts, write the worker's spec and task files."""
    sys.path.insert(0, str(HERE))
    from bench_generate import ModelShape, build_benchmark_model, fit_answer_format, read_sst2_items

    from lvlm.eval.models.hf import HFScoringModel
    from lvlm.eval.scoring.loglik import continuation_for

    items = read_sst2_items(sentences)
    model, tokenizer = build_benchmark_model([item.text for item in items], ModelShape())
    fit_answer_format(model, HFScoringModel(model, tokenizer), items, args.train_steps)
    model_dir = OUT_DIR / "loglik_model"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    scoring = HFScoringModel(model, tokenizer)
    requests, task_names, by_set = [], [], {}
    for item in items:
        context = scoring.format_prompt(item.text)
        pairs = [(context, continuation_for(context, word, None)) for word in item.words]
        requests.extend(pairs)
        by_set.setdefault(item.set_name, []).append(
            {"context": context, "choices": list(item.words), "gold": item.gold}
        )
    task_dir = OUT_DIR / "lmeval_tasks"
    task_dir.mkdir(parents=True, exist_ok=True)
    for set_name, docs in by_set.items():
        data = task_dir / f"{set_name}.jsonl"
        data.write_text("".join(json.dumps(doc) + "\n" for doc in docs))
        name = f"verbalizer_sst2_{set_name}"
        (task_dir / f"{name}.yaml").write_text(TASK_YAML.format(name=name, data=data))
        task_names.append(name)
    spec = {
        "model_dir": str(model_dir),
        "requests": requests,
        "task_dir": str(task_dir),
        "task_names": task_names,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "bootstrap_iters": args.bootstrap_iters,
        "repeats": args.repeats,
        "items": [[item.set_name, item.gold] for item in items],
        "result_path": str(OUT_DIR / "lmeval_result.json"),
    }
    spec_path = OUT_DIR / "lmeval_spec.json"
    spec_path.write_text(json.dumps(spec))
    return items, model_dir, spec_path, spec


def run_ours(
    items, model_dir: Path, batch_size: int, bootstrap_iters: int, repeats: int
) -> dict[str, object]:
    """Our whole evaluation (load the saved model, score, metrics, bootstrap CIs) timed once, then the
    scoring alone ``repeats`` more times."""
    from lvlm.eval.models.hf import load_hf_scoring_model
    from lvlm.eval.results.bootstrap import bootstrap_cis
    from lvlm.eval.results.metrics import compute_metrics
    from lvlm.eval.scoring.scorers import run_scorer

    start = time.perf_counter()
    model = load_hf_scoring_model(str(model_dir))
    predictions = run_scorer("loglikelihood", model, items, batch_size=batch_size, progress=False).predictions
    scored = time.perf_counter()
    metrics = compute_metrics(items, predictions)
    intervals = bootstrap_cis(items, predictions, n_resamples=bootstrap_iters)
    done = time.perf_counter()
    loglik_seconds = []
    for _ in range(repeats):
        begin = time.perf_counter()
        run_scorer("loglikelihood", model, items, batch_size=batch_size, progress=False)
        loglik_seconds.append(time.perf_counter() - begin)
    return {
        "predictions": predictions,
        "metrics": metrics,
        "intervals": intervals,
        "loglik_seconds": loglik_seconds,
        "metric_seconds": done - scored,
        "whole_seconds": done - start,
    }


def _table(n_requests: int, ours: dict[str, object], theirs: dict[str, object]) -> list[str]:
    ours_best, theirs_best = min(ours["loglik_seconds"]), min(theirs["loglik_seconds"])
    rows = [
        ("log-likelihood requests/s (best run)", n_requests / ours_best, n_requests / theirs_best),
        ("log-likelihood seconds (best run)", ours_best, theirs_best),
        (
            "whole evaluation seconds (load + score + metrics + CIs)",
            ours["whole_seconds"],
            theirs["whole_seconds"],
        ),
        ("metric + CI stage seconds", ours["metric_seconds"], theirs["metric_seconds"]),
    ]
    lines = ["| measure | ours | lm-eval 0.4.13 | ours vs lm-eval |", "|---|---|---|---|"]
    for name, mine, other in rows:
        ratio = mine / other if "requests/s" in name else other / mine
        lines.append(f"| {name} | {mine:.2f} | {other:.2f} | {ratio:.1f}x |")
    return lines


def report(items, ours: dict[str, object], theirs: dict[str, object], threads: int) -> None:
    ours_ll = [value for p in ours["predictions"] for value in p.loglikelihoods]
    difference = max(abs(a - b) for a, b in zip(ours_ll, theirs["loglikelihoods"], strict=True))
    print(f"{len(items)} SST-2 prompts x 2 words = {len(ours_ll)} requests; {threads} threads")
    print("\n".join(_table(len(ours_ll), ours, theirs)))
    pairs = zip(ours["loglik_seconds"], theirs["loglik_seconds"], strict=True)
    runs = ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs)
    print(f"log-likelihood seconds per run (ours/theirs): {runs}")
    print(f"max |log-likelihood difference| over {len(ours_ll)} requests: {difference:.2e}")
    metrics, intervals = ours["metrics"], ours["intervals"]
    for name in (*metrics.by_system, "all"):
        f1 = metrics.by_system[name].pooled.f1 if name in metrics.by_system else metrics.all_f1
        ci = intervals[name]
        print(f"ours {name}: macro-F1 {100 * f1:.1f} [{100 * ci.low:.1f}, {100 * ci.high:.1f}]")
    for name, values in theirs["metrics"].items():
        print(
            f"lm-eval {name}: acc {values.get('acc,none'):.3f}, binary F1 {values.get('f1,none'):.3f} "
            f"(bootstrap stderr {values.get('f1_stderr,none'):.3f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=872, help="SST-2 sentences (x3 sets)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--repeats", type=int, default=3, help="timed log-likelihood runs per tool (best kept)"
    )
    parser.add_argument("--bootstrap-iters", type=int, default=1000)
    parser.add_argument("--train-steps", type=int, default=40, help="answer-format steps (0 = purely random)")
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker)
        return
    os.environ.update(OFFLINE)
    python = ensure_lmeval_venv()
    import torch

    torch.set_num_threads(args.threads)
    items, model_dir, spec_path, spec = prepare(args, args.sentences)
    subprocess.run([str(python), __file__, "--worker", str(spec_path)], check=True, env=os.environ | OFFLINE)
    theirs = json.loads(Path(spec["result_path"]).read_text())
    ours = run_ours(items, model_dir, args.batch_size, args.bootstrap_iters, args.repeats)
    report(items, ours, theirs, args.threads)


if __name__ == "__main__":
    main()
