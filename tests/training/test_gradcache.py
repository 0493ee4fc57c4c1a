"""GradCache gives the full-batch gradients, with chunks smaller than the batch."""

from __future__ import annotations

import zlib

import pytest
import torch
import torch.nn.functional as F

from jude.modeling.losses import info_nce
from jude.training.gradcache import RandContext, gradcache_step

VOCAB = 64


def _tiny_bert(dropout: float) -> torch.nn.Module:
    """A 2-layer BERT, random init, nothing downloaded."""
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=32,
        hidden_dropout_prob=dropout,
        attention_probs_dropout_prob=dropout,
    )
    return BertModel(cfg)


def _embedder(model: torch.nn.Module, device: str = "cpu"):
    """texts -> (n, 32): hashed word ids, mean pooling, L2 norm (the shape of jude's Embedder)."""

    def embed(texts):
        ids = [[2 + zlib.crc32(w.encode()) % (VOCAB - 2) for w in t.split()][:16] for t in texts]
        T = max(len(x) for x in ids)
        input_ids = torch.tensor([x + [0] * (T - len(x)) for x in ids], device=device)
        mask = (input_ids != 0).long()
        hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state  # (n, T, 32)
        m = mask.unsqueeze(-1).float()
        return F.normalize((hidden * m).sum(1) / m.sum(1), dim=-1)

    return embed


QUERIES = [
    f"member {i} knows python sql and {w}"
    for i, w in enumerate(["spark", "react", "rust", "go", "excel", "figma", "docker", "kotlin", "swift", "scala"])
]
DOCS = [
    f"job {i} needs {w} engineer senior remote"
    for i, w in enumerate(["spark", "react", "rust", "go", "excel", "figma", "docker", "kotlin", "swift", "scala"])
]


def _loss(q, d):
    return info_nce(q, d, 0.05, symmetric=True)


def _grads(model) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_gradients_equal_full_batch_gradients_without_dropout():
    model = _tiny_bert(dropout=0.0)
    embed = _embedder(model)

    model.zero_grad()
    full = _loss(embed(QUERIES), embed(DOCS))
    full.backward()
    expected = _grads(model)

    model.zero_grad()
    value = gradcache_step(embed, embed, QUERIES, DOCS, _loss, chunk_size=3)  # 10 texts: chunks 3,3,3,1
    got = _grads(model)

    assert value == pytest.approx(full.item(), rel=1e-5)
    assert got.keys() == expected.keys() and len(got) > 10
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize(
    "device",
    [
        "cpu",
        pytest.param(
            "cuda",
            marks=[
                pytest.mark.gpu,
                pytest.mark.skipif(
                    not torch.cuda.is_available(), reason="needs CUDA: dropout RNG replay on the GPU generator"
                ),
            ],
        ),
    ],
)
def test_dropout_masks_are_replayed_in_the_second_pass(device):
    """With dropout on, GradCache equals a chunked forward with graph from the same RNG state."""
    model = _tiny_bert(dropout=0.2).to(device)
    model.train()
    embed = _embedder(model, device)
    chunk = 4

    torch.manual_seed(123)  # seeds the CUDA generators too
    model.zero_grad()
    q = torch.cat([embed(QUERIES[i : i + chunk]) for i in range(0, len(QUERIES), chunk)])
    d = torch.cat([embed(DOCS[i : i + chunk]) for i in range(0, len(DOCS), chunk)])
    ref = _loss(q, d)
    ref.backward()
    expected = _grads(model)

    torch.manual_seed(123)
    model.zero_grad()
    value = gradcache_step(embed, embed, QUERIES, DOCS, _loss, chunk_size=chunk)
    got = _grads(model)

    assert value == pytest.approx(ref.item(), rel=1e-5)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_without_rng_replay_dropout_gradients_would_differ():
    """The control for the test above: a fresh dropout draw changes the gradient."""
    model = _tiny_bert(dropout=0.2)
    model.train()
    embed = _embedder(model)
    torch.manual_seed(1)
    model.zero_grad()
    _loss(embed(QUERIES), embed(DOCS)).backward()
    first = _grads(model)
    model.zero_grad()
    _loss(embed(QUERIES), embed(DOCS)).backward()  # the RNG has moved on
    second = _grads(model)
    assert any(not torch.allclose(first[n], second[n], atol=1e-5) for n in first)


def test_loss_parameters_get_their_gradient_too():
    model = _tiny_bert(dropout=0.0)
    embed = _embedder(model)
    log_t = torch.nn.Parameter(torch.tensor(-3.0))
    gradcache_step(embed, embed, QUERIES, DOCS, lambda q, d: info_nce(q, d, log_t.exp()), chunk_size=4)
    assert log_t.grad is not None and log_t.grad.abs() > 0


def test_rand_context_replays_and_leaves_the_global_rng_alone():
    torch.manual_seed(5)
    ctx = RandContext()
    a = torch.rand(3)
    after = torch.rand(1)
    torch.manual_seed(5)
    torch.rand(3)
    with ctx:
        b = torch.rand(3)
    assert torch.equal(a, b)
    assert torch.equal(torch.rand(1), after)  # the replay did not consume the global stream


def test_bad_arguments_are_named():
    model = _tiny_bert(dropout=0.0)
    embed = _embedder(model)
    with pytest.raises(ValueError, match="chunk_size must be > 0, got 0"):
        gradcache_step(embed, embed, QUERIES, DOCS, _loss, chunk_size=0)
    with pytest.raises(ValueError, match=r"embed_q must return a \(3, D\) tensor"):
        gradcache_step(lambda t: embed(t)[:1], embed, QUERIES, DOCS, _loss, chunk_size=3)
    with pytest.raises(ValueError, match="scalar tensor"):
        gradcache_step(embed, embed, QUERIES, DOCS, lambda q, d: torch.tensor(0.0), chunk_size=3)
