"""``python export.py ckpt=<last.ckpt> out=<dir> [overwrite=true]``: export a trained LVLM.

Arguments are ``key=value`` pairs like the other entry points. Bad input (a missing or broken checkpoint,
an existing non-empty ``out`` without ``overwrite=true``, an unknown key) prints one ``error: ...`` line and
exits with code 2.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from lvlm.errors import ConfigError
from lvlm.utils.runtime import apply_offline_defaults, report_user_errors

USAGE = """usage: python export.py ckpt=<path/to/last.ckpt> out=<folder> [overwrite=true]

Export a trained LVLM checkpoint: merges LoRA into the LLM and writes
  <out>/llm/                   LLM + tokenizer (save_pretrained, safetensors, training chat template)
  <out>/projector.safetensors  projector weights
  <out>/vision_config.json     vision tower config of the checkpoint's base model
  <out>/export.json            provenance
  <out>/README.md              model card
  <out>/llava_hf/              the whole LVLM as LlavaForConditionalGeneration + LlavaProcessor
                               (only for an HF CLIP tower with the mlp2x_gelu projector)
Load the LLM with AutoModelForCausalLM.from_pretrained("<out>/llm") and AutoTokenizer alike.

arguments:
  ckpt=PATH        checkpoint written by train.py (<run dir>/checkpoints/last.ckpt)
  out=DIR          output folder (must be absent or empty unless overwrite=true)
  overwrite=BOOL   replace a non-empty out folder (default false)
"""
KEYS = ("ckpt", "out", "overwrite")
TRUE, FALSE = ("true", "1", "yes"), ("false", "0", "no")


def parse_args(argv: Sequence[str]) -> dict[str, str]:
    """``key=value`` pairs; ``--help``/``-h`` prints the usage and exits 0."""
    if any(arg in ("-h", "--help", "help") for arg in argv):
        print(USAGE, end="")
        sys.exit(0)
    args: dict[str, str] = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.lstrip("+")
        if not sep or key not in KEYS:
            raise ConfigError(
                f"unknown argument '{arg}'; fix: pass ckpt=<file> out=<folder> [overwrite=true]"
            )
        args[key] = value
    for key in ("ckpt", "out"):
        if not args.get(key):
            raise ConfigError(f"missing {key}=...; fix: python export.py ckpt=<last.ckpt> out=<folder>")
    overwrite = args.get("overwrite", "false").lower()
    if overwrite not in TRUE + FALSE:
        raise ConfigError(f"overwrite={args['overwrite']} is not a boolean; fix: overwrite=true or false")
    args["overwrite"] = "true" if overwrite in TRUE else "false"
    return args


@report_user_errors
def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    apply_offline_defaults()
    ckpt = Path(args["ckpt"])
    if not ckpt.is_file():  # before importing torch: a typo costs one line and no waiting
        what = "is a directory, not a file" if ckpt.is_dir() else "checkpoint not found"
        raise ConfigError(f"{ckpt}: {what}; fix: pass a .ckpt file written by train.py "
                          "(e.g. <run dir>/checkpoints/last.ckpt)")  # fmt: skip
    from lvlm.export.writer import check_out_dir, export_checkpoint

    check_out_dir(Path(args["out"]), args["overwrite"] == "true")  # before the slow model build
    result = export_checkpoint(args["ckpt"], args["out"], overwrite=args["overwrite"] == "true")
    width = 14
    print(f"{'llm'.ljust(width)}: {result.llm_dir}  (LoRA merged: {str(result.merged_lora).lower()})")
    print(f"{'projector'.ljust(width)}: {result.projector}")
    print(f"{'vision config'.ljust(width)}: {result.vision_config}")
    print(f"{'model card'.ljust(width)}: {result.card}")
    print(f"{'provenance'.ljust(width)}: {result.provenance}")
    print(f"{'template'.ljust(width)}: {result.template}")
    print(f"{'llava_hf'.ljust(width)}: {result.llava_hf or result.facts.get('llava_hf')}")
