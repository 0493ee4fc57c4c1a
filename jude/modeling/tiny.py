"""Tiny random-initialised decoder-only models, built offline, for tests and smoke runs.

The decoder code path (last-token pooling, left padding, LoRA on q/k/v, DeepSpeed)
must be exercised without a model hub. ``build_tiny_decoder`` trains a small
word-level tokenizer on a handful of sentences, wraps it as a
``PreTrainedTokenizerFast`` with ``<eos>``/``<pad>``/``<unk>`` special tokens,
builds a 2-layer Qwen2 / Llama / Mistral with a 32-64 wide hidden state, and
saves both to a directory that ``Embedder.from_base`` accepts like any hub model.
The weights are random (seeded): useful to check mechanics, never quality.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import torch

from jude.fsutils import atomic_directory

FAMILIES = ("qwen2", "llama", "mistral")

# Enough words to cover the rendered job / profile / resume templates' fixed parts;
# anything else maps to <unk>, which is fine for a mechanics check.
DEFAULT_CORPUS = (
    "Instruct: Represent this job posting for retrieving members who are qualified for it.",
    "Instruct: Represent this member profile for retrieving job postings that fit it.",
    "Instruct: Represent this resume for retrieving job postings that fit it.",
    "Query: Job: Data Engineer at Acme Location: Berlin (remote) Seniority: senior; at least 5 years",
    "Member: Backend developer Current title: Software Engineer Location: Paris Experience: 3 years",
    "Skills: python, sql, spark, kubernetes, java, react, machine learning, product design",
    "Resume: I built data pipelines and web services for ten years in London and Madrid.",
    "a data engineer in berlin ; a nurse in madrid ; a designer in paris",
)


def build_tokenizer(corpus: Iterable[str] = DEFAULT_CORPUS, vocab_size: int = 512):
    """A word-level tokenizer trained on ``corpus``, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Whitespace()  # words and punctuation
    trainer = trainers.WordLevelTrainer(vocab_size=vocab_size, special_tokens=["<pad>", "<unk>", "<eos>"])
    tok.train_from_iterator(list(corpus), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", eos_token="<eos>", model_max_length=512
    )


def tiny_decoder_config(
    family: str, vocab_size: int, hidden_size: int = 32, layers: int = 2, pad_token_id: int = 0, eos_token_id: int = 2
):
    """A ``Qwen2Config`` / ``LlamaConfig`` / ``MistralConfig`` small enough for a CPU test."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {list(FAMILIES)}, got {family!r}")
    if hidden_size % 4:
        raise ValueError(f"hidden_size must be a multiple of 4 (4 attention heads), got {hidden_size}")
    from transformers import LlamaConfig, MistralConfig, Qwen2Config

    cls = {"qwen2": Qwen2Config, "llama": LlamaConfig, "mistral": MistralConfig}[family]
    return cls(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=pad_token_id,
        eos_token_id=eos_token_id,
        bos_token_id=eos_token_id,
        tie_word_embeddings=False,
        architectures=[f"{cls.__name__[:-6]}ForCausalLM"],
    )


def build_tiny_decoder(
    path: str | os.PathLike,
    family: str = "qwen2",
    hidden_size: int = 32,
    layers: int = 2,
    seed: int = 0,
    corpus: Iterable[str] = DEFAULT_CORPUS,
) -> Path:
    """Save a tiny random ``family`` causal LM (weights + tokenizer) to ``path``; return it.

    The directory is written next to ``path`` and renamed into place, so a crash
    never leaves half a model behind.
    """
    from transformers import AutoModelForCausalLM

    path = Path(path)
    tokenizer = build_tokenizer(corpus)
    cfg = tiny_decoder_config(
        family,
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        layers=layers,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(path) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
    return path
