"""The project's own tiny tokenizer, built in-process and offline.

A byte-level BPE (so any text round-trips) trained deterministically with ``tokenizers`` on a fixed corpus
of the words this project's synthetic data, chat templates and evaluation prompts use. It is wrapped in a
``PreTrainedTokenizerFast`` with the special tokens ``<s>``, ``</s>``, ``<unk>``, ``<pad>`` and the image
placeholder ``<image>``, and a Llama-2 chat template. Training takes ~0.1 s; the result is cached on disk.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from lvlm.constants import IMAGE_TOKEN

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", IMAGE_TOKEN]

_CORPUS_WORDS = """
[INST] [/INST] <<SYS>> <</SYS>> You are a helpful language and vision assistant. You are able to understand
the visual content that the user provides, and assist the user with a variety of tasks using natural language.
What color is the shape? How many objects are there in the image? Where is the red square? Which shape is in
the top left? The image shows a small blue circle in the bottom right and a large green triangle in the
center.
There are two objects. There is one object. There are three objects. Describe the image briefly. Caption:
circle square triangle red green blue yellow purple orange white gray black small large top middle bottom
left right center background picture scene zero one two three four five six seven eight nine ten
If a movie review is positive, you need to output "positive". If a movie review is negative, you need to
output "negative". Movie review: Answer: Sentence: Tweet: Premise: Hypothesis: Question 1: Question 2:
Sentence 1: Sentence 2: entailment contradiction not entailment duplicate not duplicate equivalent not
equivalent subjective objective joy sadness yes no foo bar sfo lax lake river 1 0 financial news tweet
expresses the premise entails contradicts the hypothesis two questions are duplicates sentences are
Your answer must contain exactly bullet points in Markdown using the following format: * Bullet point one.
Answer with at most words. Wrap your entire response in double quotation marks. Include a title wrapped in
double angular brackets, such as <<poem of joy>>. Your response should contain paragraphs separated by ***
the a an of to in is it that and for on with as this was at by be are from or have has not but they which
"""


def _corpus() -> list[str]:
    lines = [line.strip() for line in _CORPUS_WORDS.strip().splitlines()]
    return lines * 4


def build_tokenizer(vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Train the byte-level BPE and wrap it; deterministic for a given ``vocab_size``."""
    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return wrap_tokenizer(tok)


def wrap_tokenizer(tok: Tokenizer) -> PreTrainedTokenizerFast:
    from lvlm.templates import LLAMA2_CHAT_JINJA

    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        pad_token="<pad>",
        extra_special_tokens={"image_token": IMAGE_TOKEN},
        model_max_length=4096,
    )
    fast.add_bos_token = False
    fast.chat_template = LLAMA2_CHAT_JINJA
    return fast


def load_or_build_tokenizer(cache_dir: Path | None, vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """Return the tiny tokenizer, reusing ``cache_dir/tokenizer-<hash>.json`` when present."""
    if cache_dir is None:
        return build_tokenizer(vocab_size)
    digest = hashlib.sha256(f"{_CORPUS_WORDS}|{vocab_size}".encode()).hexdigest()[:12]
    path = Path(cache_dir) / f"tokenizer-{digest}.json"
    if path.exists():
        return wrap_tokenizer(Tokenizer.from_file(str(path)))
    fast = build_tokenizer(vocab_size)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fast.backend_tokenizer.save(str(tmp))
    tmp.replace(path)
    return fast
