"""Benchmark: batched greedy-generation scorer vs a naive one-prompt-at-a-time ``model.generate`` baseline.

Builds a fixed benchmark model in-process (a random Llama, float32, with a byte-level BPE tokenizer trained
on the prompts), renders SST-2 validation sentences from ``../shared/data`` under three verbalizer sets
(natural, neutral, unnatural), then scores them twice:

* naive: one prompt at a time, ``model.generate(max_new_tokens=32)``, greedy, no early stop, then parse;
* ours:  ``lvlm.eval.scoring.generate.score_generate`` (length-sorted left-padded batches, KV cache, stop at
  end of line / EOS, early exit).

Prints throughput, prediction agreement (parsed labels AND generated tokens, after applying the same
stopping rule to the naive tokens), every disagreement, and achieved model FLOP/s against a measured fp32
matmul peak. Run: ``.venv/bin/python benchmarks/bench_generate.py [--sentences 170]``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from lvlm.eval.models.hf import HFScoringModel
from lvlm.eval.scoring.batching import common_prefix_length, length_sorted_batches
from lvlm.eval.scoring.generate import score_generate
from lvlm.eval.scoring.parsing import parse
from lvlm.eval.types import INVALID, PromptItem

REPO_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% else %} {{ m['content'] }} {{ eos_token }}{% endif %}{% endfor %}"
)
SST2_SETS = [
    ("natural", "golden", ("positive", "negative")),
    ("neutral", "foo_bar", ("foo", "bar")),
    ("unnatural", "swapped", ("negative", "positive")),
]
SST2_TEMPLATE = (
    'If a movie review is positive, you need to output "{w0}". If a movie review is negative, you need to '
    'output "{w1}".\nMovie review: {sentence}\nAnswer:'
)


@dataclass(frozen=True)
class ModelShape:
    hidden: int = 384
    layers: int = 6
    heads: int = 6
    intermediate: int = 1024
    vocab: int = 4096


def read_sst2_items(n_sentences: int, data_dir: Path = DATA_DIR) -> list[PromptItem]:
    """SST-2 validation sentences rendered under the three SST-2 verbalizer sets (label 1 = positive)."""
    path = data_dir / "sst2" / "becel_sst2_validation.tsv"
    if not path.exists():
        raise SystemExit(
            f"{path}: not found; fix: place the shared data beside the repository (../shared/data)"
        )
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[:n_sentences]
    items = []
    for row in rows:
        sentence, gold = row["sentence"].strip(), 0 if row["label"] == "1" else 1
        for system, set_name, words in SST2_SETS:
            text = SST2_TEMPLATE.format(w0=words[0], w1=words[1], sentence=sentence)
            items.append(PromptItem("sst2", row["index"], set_name, system, text, words, gold))
    return items


def build_benchmark_model(texts: list[str], shape: ModelShape, seed: int = 0):
    """A random float32 Llama and a byte-level BPE tokenizer (Llama-2-style chat template) fit on texts."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=shape.vocab,
        special_tokens=["<pad>", "<s>", "</s>"],
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(texts, trainer)
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(wrapped),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.heads,
        intermediate_size=shape.intermediate,
        pad_token_id=wrapped.pad_token_id,
        bos_token_id=wrapped.bos_token_id,
        eos_token_id=wrapped.eos_token_id,
        max_position_embeddings=1024,
    )
    return LlamaForCausalLM(config).float().eval(), wrapped


def fit_answer_format(model: LlamaForCausalLM, scoring: HFScoringModel, items: list[PromptItem], steps: int):
    """A few seeded AdamW steps teaching the random model to answer ``" <gold word>\\n"``.

    Without them a random model answers gibberish and every parse is INVALID; with them most answers
    are verbalizer words whose two logits are close, a much sharper test of batch invariance.
    """
    if steps <= 0:
        return
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(steps):
        chosen = torch.randint(len(items), (16,), generator=generator).tolist()
        prompts = [scoring.encode(scoring.format_prompt(items[i].text)) for i in chosen]
        answers = [scoring.encode(f" {items[i].words[items[i].gold]}\n") for i in chosen]
        width = max(len(p) + len(a) for p, a in zip(prompts, answers, strict=True))
        ids = torch.full((16, width), scoring.pad_token_id)
        labels = torch.full((16, width), -100)
        for row, (prompt, answer) in enumerate(zip(prompts, answers, strict=True)):
            ids[row, : len(prompt) + len(answer)] = torch.tensor(prompt + answer)
            labels[row, len(prompt) : len(prompt) + len(answer)] = torch.tensor(answer)
        loss = model(
            input_ids=ids, attention_mask=(labels != -100) | (ids != scoring.pad_token_id), labels=labels
        ).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()


def forward_flops(config: LlamaConfig, context: int, with_head: bool) -> float:
    """Model FLOPs of one token position attending to ``context`` positions (matmuls only)."""
    hidden, layers = config.hidden_size, config.num_hidden_layers
    kv = config.num_key_value_heads * (hidden // config.num_attention_heads)
    per_layer = 2 * (2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * config.intermediate_size)
    attention = 4 * hidden * context
    return layers * (per_layer + attention) + (2 * hidden * config.vocab_size if with_head else 0)


def sequence_flops(config: LlamaConfig, prompt_len: int, new_tokens: int) -> float:
    """FLOPs of a prefill of ``prompt_len`` tokens (head on the last) and ``new_tokens - 1`` decode steps."""
    prefill = sum(forward_flops(config, position + 1, False) for position in range(prompt_len))
    prefill += 2 * config.hidden_size * config.vocab_size
    decode = sum(forward_flops(config, prompt_len + step + 1, True) for step in range(max(0, new_tokens - 1)))
    return prefill + decode


def matmul_peak(size: int = 2048, repeats: int = 5) -> float:
    """Best measured fp32 FLOP/s of a ``size``³ matmul on this CPU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = min(_timed(lambda: torch.mm(a, b)) for _ in range(repeats))
    return 2 * size**3 / best


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def stop_like_scorer(model: HFScoringModel, tokens: list[int], max_new_tokens: int) -> list[int]:
    """Apply the scorer's stopping rule (EOS, end of first non-blank line, token cap) to naive tokens."""
    kept: list[int] = []
    for token in tokens[:max_new_tokens]:
        if token in model.eos_token_ids:
            break
        kept.append(token)
        if any(mark in model.decode(kept).lstrip() for mark in ("\n", "\r")):
            break
    return kept


@torch.inference_mode()
def run_naive(model: HFScoringModel, items: list[PromptItem], max_new_tokens: int = 32):
    """One prompt at a time: ``generate`` 32 greedy tokens, cut at EOS, decode, parse."""
    outputs, flops = [], 0.0
    start = time.perf_counter()
    for item in items:
        prompt = model.encode(model.format_prompt(item.text))
        generated = model.model.generate(
            torch.tensor([prompt]),
            attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=None,
            pad_token_id=model.pad_token_id,
        )[0, len(prompt) :].tolist()
        cut = next((i for i, t in enumerate(generated) if t in model.eos_token_ids), len(generated))
        outputs.append((generated, parse(model.decode(generated[:cut]), item.words)))
        flops += sequence_flops(model.model.config, len(prompt), len(generated))
    return outputs, time.perf_counter() - start, flops


def _decode_passes(prediction, max_new_tokens: int) -> int:
    """Decode passes a row needed after prefill: one per kept token after the first, plus one for EOS."""
    n_tokens, text = prediction.extra["n_tokens"], prediction.raw.lstrip()
    stopped_by_eos = n_tokens < max_new_tokens and not any(mark in text for mark in ("\n", "\r"))
    return n_tokens if stopped_by_eos else max(0, n_tokens - 1)


def executed_flops(
    model: HFScoringModel, items: list[PromptItem], predictions, batch_size: int, max_new_tokens: int
) -> float:
    """FLOPs the batched scorer really runs on real tokens: each batch's shared prefix once, every row's
    own suffix, and the decode steps of rows still generating (padding and finished rows excluded)."""
    config = model.model.config
    prompts = [model.encode(model.format_prompt(item.text)) for item in items]
    groups = [(item.task, item.set_name) for item in items]
    total = 0.0
    for batch in length_sorted_batches([len(p) for p in prompts], batch_size, groups):
        rows = [prompts[i] for i in batch]
        shared = min(common_prefix_length(rows), min(len(r) for r in rows) - 1) if len(rows) > 1 else 0
        shared = shared if shared >= 4 else 0
        total += sum(forward_flops(config, position + 1, False) for position in range(shared))
        for index, prompt in zip(batch, rows, strict=True):
            total += sum(
                forward_flops(config, position + 1, False) for position in range(shared, len(prompt))
            )
            total += 2 * config.hidden_size * config.vocab_size
            steps = _decode_passes(predictions[index], max_new_tokens)
            total += sum(forward_flops(config, len(prompt) + step + 1, True) for step in range(steps))
    return total


def run_ours(model: HFScoringModel, items: list[PromptItem], batch_size: int, max_new_tokens: int = 8):
    start = time.perf_counter()
    predictions = score_generate(
        model, items, batch_size=batch_size, max_new_tokens=max_new_tokens, progress=False
    )
    elapsed = time.perf_counter() - start
    return predictions, elapsed, executed_flops(model, items, predictions, batch_size, max_new_tokens)


def run_interleaved(model: HFScoringModel, items: list[PromptItem], batch_size: int):
    """Naive and batched scoring alternating over chunks of ``2 * batch_size`` prompts (one verbalizer set
    after another), so both see the same machine load; returns the items in run order and both results."""
    ordered = sorted(items, key=lambda item: item.set_name)
    naive, ours = [], []
    totals = {"naive_seconds": 0.0, "naive_flops": 0.0, "ours_seconds": 0.0, "ours_flops": 0.0}
    for start in range(0, len(ordered), 2 * batch_size):
        chunk = ordered[start : start + 2 * batch_size]
        outputs, seconds, flops = run_naive(model, chunk)
        naive += outputs
        totals["naive_seconds"] += seconds
        totals["naive_flops"] += flops
        predictions, seconds, flops = run_ours(model, chunk, batch_size)
        ours += predictions
        totals["ours_seconds"] += seconds
        totals["ours_flops"] += flops
    return ordered, naive, ours, totals


def compare(model: HFScoringModel, items, naive, ours, max_new_tokens: int = 8) -> dict[str, object]:
    label_same = token_same = 0
    disagreements = []
    for item, (tokens, labels), prediction in zip(items, naive, ours, strict=True):
        expected = stop_like_scorer(model, tokens, max_new_tokens)
        same_labels = labels == (prediction.strict, prediction.lenient)
        same_tokens = model.decode(expected) == prediction.raw
        label_same += same_labels
        token_same += same_tokens
        if not (same_labels and same_tokens):
            disagreements.append(
                {
                    "uid": item.uid,
                    "set": item.set_name,
                    "naive": model.decode(expected),
                    "naive_labels": labels,
                    "ours": prediction.raw,
                    "ours_labels": (prediction.strict, prediction.lenient),
                }
            )
    return {
        "label_agreement": label_same / len(items),
        "text_agreement": token_same / len(items),
        "valid_strict": sum(p.strict != INVALID for p in ours) / len(items),
        "valid_lenient": sum(p.lenient != INVALID for p in ours) / len(items),
        "correct_lenient": sum(p.lenient == item.gold for item, p in zip(items, ours, strict=True))
        / len(items),
        "disagreements": disagreements,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=170, help="SST-2 sentences (x3 verbalizer sets)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--train-steps", type=int, default=40, help="answer-format steps (0 = purely random)")
    parser.add_argument("--json", type=Path, default=None, help="also write the measured numbers here")
    args = parser.parse_args()
    items = read_sst2_items(args.sentences)
    shape = ModelShape()
    model, tokenizer = build_benchmark_model([item.text for item in items], shape)
    fit_answer_format(model, HFScoringModel(model, tokenizer), items, args.train_steps)
    scoring = HFScoringModel(model, tokenizer)
    load_before, peak = os.getloadavg()[0], matmul_peak()
    items, naive, ours, totals = run_interleaved(scoring, items, args.batch_size)
    peak, load_after = max(peak, matmul_peak()), os.getloadavg()[0]
    naive_time, naive_flops = totals["naive_seconds"], totals["naive_flops"]
    ours_time, ours_flops = totals["ours_seconds"], totals["ours_flops"]
    result = compare(scoring, items, naive, ours)
    n = len(items)
    params = sum(p.numel() for p in model.parameters())
    rows = [
        ("naive generate (bs 1, 32 tokens)", n / naive_time, naive_time, naive_flops / naive_time),
        (
            f"batched scorer (bs {args.batch_size}, <=8 tokens)",
            n / ours_time,
            ours_time,
            ours_flops / ours_time,
        ),
    ]
    print(
        f"model: Llama hidden {shape.hidden}, {shape.layers} layers, vocab {len(tokenizer)}, "
        f"{params / 1e6:.1f} M params, fp32, {torch.get_num_threads()} threads; {n} SST-2 prompts; "
        f"fp32 matmul peak {peak / 1e9:.1f} GFLOP/s; load average {load_before:.1f} -> {load_after:.1f}"
    )
    print("| method | examples/s | seconds | model GFLOP/s | % of matmul peak |")
    print("|---|---|---|---|---|")
    for name, rate, seconds, flops in rows:
        print(f"| {name} | {rate:.1f} | {seconds:.1f} | {flops / 1e9:.1f} | {100 * flops / peak:.1f} |")
    print(
        f"speed-up: {naive_time / ours_time:.1f}x; parsed-label agreement "
        f"{100 * result['label_agreement']:.2f} %; "
        f"generated-text agreement {100 * result['text_agreement']:.2f} %"
    )
    print(
        f"our answers: {100 * result['valid_strict']:.1f} % strict-valid, "
        f"{100 * result['valid_lenient']:.1f} % lenient-valid, "
        f"{100 * result['correct_lenient']:.1f} % correct"
    )
    print(f"disagreements ({len(result['disagreements'])}):")
    for row in result["disagreements"]:
        print("  ", json.dumps(row, ensure_ascii=False))
    if args.json:
        numbers = {
            "n": n,
            "naive_seconds": naive_time,
            "ours_seconds": ours_time,
            "peak_flops": peak,
            "naive_flops": naive_flops,
            "ours_flops": ours_flops,
            "load_average": [load_before, load_after],
        } | result
        args.json.write_text(json.dumps(numbers, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
