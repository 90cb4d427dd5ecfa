"""Training benchmark: padding with and without length grouping, throughput against the CPU's matmul peak,
and the cost of gradient checkpointing — measured in one run and printed as one table of ratios.

    python benchmarks/bench_train.py [--samples 4000] [--batch 16] [--steps 6] [--quick]

1. Padding. Sample lengths follow the real LLaVA files in ../shared/data/llava (LLaVA-Instruct excerpt,
   LCS-558K excerpt, the COCO Q/A conversations), tokenized with the project tokenizer, plus 256 image
   tokens (CLIP ViT-L/14 at 224 px) for image samples; 30 % text-only samples are mixed in. The share of
   padded token slots per epoch is measured with ``ModalityLengthBatchSampler`` grouped and ungrouped.
2. Throughput. A Llama preset large enough to be compute-bound on CPU (hidden 512, 8 layers, sequence
   512) runs full training steps (forward, backward, AdamW). Model FLOP/s use the usual 6·N·tokens plus
   the attention term 12·L·d·T per token, against the fp32 matmul peak measured here with large ``mm``s.
3. Gradient checkpointing. The same steps with ``enable_gradient_checkpointing``; tokens/s and peak
   resident memory (each configuration runs in its own process, read from ``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data" / "llava"
IMAGE_TOKENS = 256


def real_lengths() -> tuple[list[int], list[int]]:
    """Token lengths of the real LLaVA conversations: (with image, text part only)."""
    from lvlm.models.tokenizer import build_tokenizer

    tokenizer = build_tokenizer()
    texts = []
    for name in ("llava_instruct_100.json", "blip_laion_cc_sbu_558k_first10.json",
                 "DERIVED_llava_bench_coco_30x3_as_llava_conversations.json"):  # fmt: skip
        path = SHARED / name
        if path.exists():
            for record in json.loads(path.read_text(encoding="utf-8")):
                texts.append(" ".join(turn["value"] for turn in record["conversations"]))
    if not texts:
        sys.exit(f"error: no LLaVA samples under {SHARED}; fix: place ../shared/data beside the repository")
    text_lengths = [len(ids) for ids in tokenizer(texts, add_special_tokens=False)["input_ids"]]
    return [n + IMAGE_TOKENS for n in text_lengths], text_lengths


def length_mix(samples: int, seed: int = 0) -> tuple[list[int], list[bool]]:
    with_image, text_only = real_lengths()
    rng = random.Random(seed)
    images = [rng.random() < 0.7 for _ in range(samples)]
    lengths = [rng.choice(with_image if image else text_only) for image in images]
    return lengths, images


def padding(samples: int, batch: int) -> dict[str, float]:
    from lvlm.data.samplers import ModalityLengthBatchSampler, padding_fraction

    lengths, images = length_mix(samples)
    out = {}
    for name, group in (("grouped", True), ("ungrouped", False)):
        sampler = ModalityLengthBatchSampler(lengths, images, batch, seed=0, group=group)
        out[name] = padding_fraction(list(sampler), lengths)
    return out


def matmul_peak(size: int = 2048, repeats: int = 8) -> float:
    """Measured fp32 GFLOP/s of large matrix products on this machine."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def train_steps(config: dict) -> dict:
    """Runs in a child process: tokens/s, model GFLOP/s and peak RSS of ``steps`` training steps."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from lvlm.models.efficiency import enable_gradient_checkpointing

    torch.manual_seed(0)
    hidden, layers, seq, batch = config["hidden"], config["layers"], config["seq"], config["batch"]
    model_cfg = LlamaConfig(
        vocab_size=4096, hidden_size=hidden, intermediate_size=hidden * 8 // 3, num_hidden_layers=layers,
        num_attention_heads=8, num_key_value_heads=8, max_position_embeddings=seq,
    )  # fmt: skip
    model_cfg._attn_implementation = "sdpa"
    model = LlamaForCausalLM(model_cfg)
    if config["checkpointing"]:
        enable_gradient_checkpointing(model)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    ids = torch.randint(0, 4096, (batch, seq))

    def step() -> float:
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss)

    step()  # warm-up
    start = time.perf_counter()
    losses = [step() for _ in range(config["steps"])]
    seconds = time.perf_counter() - start
    tokens = batch * seq * config["steps"]
    params = sum(p.numel() for n, p in model.named_parameters() if "embed_tokens" not in n)
    flops = tokens * (6 * params + 12 * layers * hidden * seq)
    return {
        "tokens_per_s": tokens / seconds,
        "gflops": flops / seconds / 1e9,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "final_loss": losses[-1],
    }


def run_child(config: dict) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(config)], capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=4000, help="samples in the length mix")
    parser.add_argument("--batch", type=int, default=16, help="batch size for the padding measurement")
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per configuration")
    parser.add_argument("--quick", action="store_true", help="a smaller model (smoke run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(train_steps(json.loads(args.child))))
        return
    pad = padding(args.samples, args.batch)
    peak = matmul_peak()
    base = {"hidden": 256 if args.quick else 512, "layers": 4 if args.quick else 8,
            "seq": 256 if args.quick else 512, "batch": 4, "steps": args.steps}  # fmt: skip
    plain = run_child({**base, "checkpointing": False})
    ckpt = run_child({**base, "checkpointing": True})
    rows = [
        ("padding fraction, grouped", f"{pad['grouped']:.2%}", "goal <= 5 %"),
        ("padding fraction, ungrouped", f"{pad['ungrouped']:.2%}", ""),
        ("padding ratio ungrouped / grouped", f"{pad['ungrouped'] / max(pad['grouped'], 1e-9):.1f}x", ""),
        ("fp32 matmul peak (GFLOP/s)", f"{peak:.1f}", "measured, 2048^2 mm"),
        (
            "train tokens/s",
            f"{plain['tokens_per_s']:.0f}",
            f"hidden {base['hidden']}, {base['layers']} layers",
        ),
        ("model GFLOP/s", f"{plain['gflops']:.1f}", ""),
        ("model FLOP/s / matmul peak", f"{plain['gflops'] / peak:.0%}", "goal >= 40 %"),
        ("tokens/s with grad checkpointing", f"{ckpt['tokens_per_s']:.0f}", ""),
        ("checkpointing / plain tokens/s", f"{ckpt['tokens_per_s'] / plain['tokens_per_s']:.2f}", ""),
        ("peak RSS plain (MB)", f"{plain['peak_rss_mb']:.0f}", ""),
        ("peak RSS checkpointing (MB)", f"{ckpt['peak_rss_mb']:.0f}", ""),
        ("peak RSS ratio ckpt / plain", f"{ckpt['peak_rss_mb'] / plain['peak_rss_mb']:.2f}", ""),
    ]
    width = max(len(name) for name, _, _ in rows)
    print(f"{'measure'.ljust(width)} | value      | note")
    print(f"{'-' * width}-|------------|-----")
    for name, value, note in rows:
        print(f"{name.ljust(width)} | {value.ljust(10)} | {note}")


if __name__ == "__main__":
    main()
