"""Decoder-only bases (tiny random Qwen2 and Llama built offline): pooling, padding, LoRA, round trip."""

import numpy as np
import pandas as pd
import pytest
import torch

from jude.config import LoRAConfig, ModelConfig, TrainConfig
from jude.modeling.embedder import Embedder
from jude.modeling.tiny import build_tiny_decoder

FAMILIES = ["qwen2", "llama"]
TEXTS = [
    "a data engineer in berlin",
    "a nurse",
    "skills: python, sql, spark, kubernetes, java and react",
    "resume: i built data pipelines for ten years in london",
]


@pytest.fixture(scope="module")
def decoder_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("decoders")
    return {f: build_tiny_decoder(root / f, f, hidden_size=32) for f in FAMILIES}


def _cfg(path, pooling="lasttoken", **kw):
    return ModelConfig(
        base_model=str(path),
        pooling=pooling,
        template_style="instruct",
        max_length_job=64,
        max_length_profile=48,
        max_length_resume=64,
        **kw,
    )


@pytest.mark.parametrize("family", FAMILIES)
def test_decoder_base_pads_left_and_appends_eos(decoder_dirs, family):
    emb = Embedder.from_base(_cfg(decoder_dirs[family]))
    assert emb.is_decoder and emb.meta.padding_side == "left" and emb.meta.append_eos
    assert emb.meta.model_type == family and emb.dimension == 32
    enc = emb.tokenize(TEXTS, 64)
    ids, mask = enc["input_ids"], enc["attention_mask"]
    assert (ids[:, -1] == emb.tokenizer.eos_token_id).all()  # EOS is every row's last token
    assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any()  # padding sits on the left


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("pooling", ["lasttoken", "mean"])
@pytest.mark.parametrize("family", FAMILIES)
def test_pooling_in_a_padded_batch_equals_each_text_alone(decoder_dirs, family, pooling, side):
    emb = Embedder.from_base(_cfg(decoder_dirs[family], pooling=pooling)).eval()
    emb.meta.padding_side = emb.tokenizer.padding_side = side
    with torch.no_grad():
        batch = emb.embed_texts(TEXTS, 64)  # (4, 32), padded to the longest text
        alone = torch.cat([emb.embed_texts([t], 64) for t in TEXTS])  # no padding at all
    assert torch.allclose(batch, alone, atol=1e-5), (batch - alone).abs().max()


def test_right_padding_puts_eos_after_the_last_real_token(decoder_dirs):
    emb = Embedder.from_base(_cfg(decoder_dirs["qwen2"]))
    emb.meta.padding_side = emb.tokenizer.padding_side = "right"
    enc = emb.tokenize(TEXTS, 64)
    last = enc["attention_mask"].sum(1) - 1  # (B,) index of the last real token
    assert (enc["input_ids"][torch.arange(len(TEXTS)), last] == emb.tokenizer.eos_token_id).all()


def test_a_truncated_text_still_ends_in_eos(decoder_dirs):
    emb = Embedder.from_base(_cfg(decoder_dirs["qwen2"]))
    enc = emb.tokenize([" ".join(["data"] * 100), "a nurse" + emb.tokenizer.eos_token], 8)
    assert enc["input_ids"].shape[1] == 8
    assert (enc["input_ids"][:, -1] == emb.tokenizer.eos_token_id).all()
    assert (enc["input_ids"][1] == emb.tokenizer.eos_token_id).sum() == 1  # an EOS in the text is not doubled


@pytest.mark.parametrize("family", FAMILIES)
def test_lora_adapts_q_k_v_only(decoder_dirs, family):
    emb = Embedder.from_base(_cfg(decoder_dirs[family]))
    emb.add_lora(LoRAConfig(r=4, alpha=8))
    trainable = [n for n, p in emb.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)  # the base stays frozen
    assert {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in trainable} == {"q_proj", "k_proj", "v_proj"}


def test_instruct_templates_reach_the_model(decoder_dirs, small_market):
    emb = Embedder.from_base(_cfg(decoder_dirs["qwen2"]))
    text = emb.render("job", small_market.jobs.head(1))[0]
    assert text.startswith("Instruct: Represent this job posting") and "\nQuery: Job: " in text


@pytest.mark.parametrize("family", FAMILIES)
def test_trained_decoder_saves_and_reloads_to_the_same_embeddings(tmp_path, decoder_dirs, small_market, family):
    from jude.training.trainer import train_embedder

    m = small_market
    n = 16
    pairs = pd.DataFrame(
        {
            "member_id": m.members["member_id"].iloc[:n].tolist(),
            "job_id": m.jobs["job_id"].iloc[:n].tolist(),
            "label": 1,
            "grade": 3,
            "source": "relevance",
        }
    )
    res = train_embedder(
        pairs,
        m.jobs,
        m.members,
        _cfg(decoder_dirs[family]),
        LoRAConfig(r=4, alpha=8),
        TrainConfig(batch_size=4, max_steps=3, learning_rate=1e-2, hard_negatives=0, member_views=["profile"]),
        tmp_path / "model",
        show_progress=False,
    )
    losses = [h["train/loss"] for h in res.history if "train/loss" in h]
    assert len(losses) == 3 and np.isfinite(losses).all()

    reloaded = Embedder.load(tmp_path / "model")
    assert reloaded.meta.pooling == "lasttoken" and reloaded.meta.padding_side == "left"
    assert reloaded.meta.template_style == "instruct" and (tmp_path / "model" / "adapter").is_dir()
    base = Embedder.from_base(_cfg(decoder_dirs[family]))
    jobs = m.jobs.head(5)
    after = reloaded.encode_entities("job", jobs)
    assert not np.allclose(after, base.encode_entities("job", jobs), atol=1e-4)  # training changed the model
    # the saved model (LoRA merged) embeds exactly as the base + the saved adapter, unmerged
    from peft import PeftModel

    base.backbone = PeftModel.from_pretrained(base.backbone, tmp_path / "model" / "adapter")
    assert np.allclose(after, base.encode_entities("job", jobs), atol=1e-5)
    assert after.dtype == np.float32 and np.allclose(np.linalg.norm(after, axis=1), 1, atol=1e-5)
