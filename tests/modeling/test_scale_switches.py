"""Training optimisations as switches: gradient checkpointing, bf16 autocast, and the GPU-only ones."""

import importlib.util

import pytest
import torch

from jude.config import LoRAConfig, ModelConfig, ScaleConfig, ScaleConfigError, check_scale
from jude.modeling.embedder import Embedder, MissingAcceleratorPackage
from jude.modeling.losses import info_nce
from jude.modeling.tiny import build_tiny_decoder

MEMBERS = ["a data engineer in berlin", "a nurse in madrid", "a designer in paris", "backend developer: java"]
JOBS = ["job: data engineer at acme", "job: nurse", "job: product design", "skills: java, kubernetes"]


@pytest.fixture(scope="module")
def qwen2_dir(tmp_path_factory):
    return build_tiny_decoder(tmp_path_factory.mktemp("scale") / "qwen2", "qwen2", hidden_size=32)


def _embedder(path, **model):
    emb = Embedder.from_base(ModelConfig(base_model=str(path), pooling="lasttoken", **model))
    torch.manual_seed(0)  # the same LoRA init for every call
    emb.add_lora(LoRAConfig(r=4, alpha=8, dropout=0.0))
    for n, p in emb.named_parameters():  # LoRA B starts at zero: give it values so gradients flow everywhere
        if "lora_B" in n:
            torch.nn.init.normal_(p, std=0.1)
    return emb.train()


def _loss_and_grads(emb):
    emb.zero_grad(set_to_none=True)
    loss = info_nce(emb.embed_texts(MEMBERS, 32), emb.embed_texts(JOBS, 32), 0.05)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in emb.named_parameters() if p.requires_grad}


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(qwen2_dir):
    plain = _embedder(qwen2_dir)
    loss0, grads0 = _loss_and_grads(plain)
    ckpt = _embedder(qwen2_dir)
    assert not ckpt.gradient_checkpointing
    ckpt.enable_gradient_checkpointing()
    assert ckpt.gradient_checkpointing and ckpt.backbone.config.use_cache is False
    loss1, grads1 = _loss_and_grads(ckpt)
    assert torch.allclose(loss0, loss1, atol=1e-6)
    assert grads0.keys() == grads1.keys() and any(g.abs().sum() > 0 for g in grads0.values())
    for n in grads0:
        assert torch.allclose(grads0[n], grads1[n], atol=1e-6), n


def test_bf16_autocast_runs_on_cpu_and_stays_close_to_fp32(qwen2_dir):
    emb = _embedder(qwen2_dir)
    with torch.no_grad():
        fp32 = emb.embed_texts(MEMBERS, 32)
    with emb.autocast():
        bf16 = emb.embed_texts(MEMBERS, 32)
        loss = info_nce(bf16, emb.embed_texts(JOBS, 32), 0.05)
    loss.backward()
    assert bf16.dtype == torch.float32 and torch.isfinite(loss)  # pooled output is cast back to fp32
    assert (fp32 * bf16.detach()).sum(1).min() > 0.98  # cosine to the fp32 embedding
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in emb.trainable_parameters())
    with pytest.raises(ValueError, match="float64"):
        emb.autocast(dtype="float64")


@pytest.mark.skipif(importlib.util.find_spec("flash_attn") is not None, reason="flash-attn is installed here")
def test_flash_attention_without_the_package_is_a_clear_error(qwen2_dir):
    with pytest.raises(MissingAcceleratorPackage, match="flash-attn"):
        Embedder.from_base(
            ModelConfig(
                base_model=str(qwen2_dir),
                pooling="lasttoken",
                dtype="bfloat16",
                attn_implementation="flash_attention_2",
            )
        )


@pytest.mark.skipif(importlib.util.find_spec("liger_kernel") is not None, reason="liger-kernel is installed here")
def test_liger_without_the_package_is_a_clear_error(qwen2_dir):
    with pytest.raises(MissingAcceleratorPackage, match="liger-kernel"):
        Embedder.trainable(
            ModelConfig(base_model=str(qwen2_dir), pooling="lasttoken"), LoRAConfig(r=4), ScaleConfig(liger=True)
        )


def test_contradicting_switches_are_named():
    with pytest.raises(ScaleConfigError, match="float16"):
        check_scale(ModelConfig(dtype="float16"), ScaleConfig(bf16=True))
    with pytest.raises(ValueError, match="scale.deepspeed"):
        ScaleConfig(deepspeed="configs/zero1.yaml")


# ---- GPU only ----------------------------------------------------------------------------
@pytest.mark.gpu
def test_flash_attention_2_matches_sdpa_under_left_padding(qwen2_dir):
    pytest.importorskip("flash_attn", reason="flash-attn is not installed")
    cfg = dict(base_model=str(qwen2_dir), pooling="lasttoken", dtype="bfloat16")
    sdpa = Embedder.from_base(ModelConfig(**cfg, attn_implementation="sdpa")).to("cuda").eval()
    fa2 = Embedder.from_base(ModelConfig(**cfg, attn_implementation="flash_attention_2")).to("cuda").eval()
    assert fa2.backbone.config._attn_implementation == "flash_attention_2"
    a, b = sdpa.encode(MEMBERS + JOBS), fa2.encode(MEMBERS + JOBS)
    assert (a * b).sum(1).min() > 0.99


@pytest.mark.gpu
def test_liger_kernels_keep_the_embeddings(qwen2_dir):
    pytest.importorskip("liger_kernel", reason="liger-kernel is not installed")
    model_cfg = ModelConfig(base_model=str(qwen2_dir), pooling="lasttoken", dtype="bfloat16")
    plain = Embedder.trainable(model_cfg, LoRAConfig(r=4), ScaleConfig()).to("cuda").eval()
    liger = Embedder.trainable(model_cfg, LoRAConfig(r=4), ScaleConfig(liger=True)).to("cuda").eval()
    assert liger.meta.extra.get("liger") is True
    a, b = plain.encode(MEMBERS), liger.encode(MEMBERS)
    assert (a * b).sum(1).min() > 0.99
