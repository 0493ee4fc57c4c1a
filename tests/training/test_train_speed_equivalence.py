"""The fast training path computes what the straightforward one does.

The trainer tokenises every text once, embeds each distinct text of a step once,
in length-sorted chunks, and mines negatives from the cached ids. The reference
kept here is the plain path: tokenise each batch, embed the member tower and the
job tower (positives, then hard negatives) in one padded forward each.

Dropout draws differ between the two paths (different chunks draw different
masks), so the comparisons run on a copy of the tiny BERT with dropout off and
LoRA dropout 0. Which pairs share a batch is the same on both paths: the batch
order is not changed by the speed work.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
import yaml

from jude.config import LoRAConfig, LossConfig, ModelConfig, TrainConfig, TrainPipelineConfig
from jude.evaluation.retrieval import evaluate_embedder
from jude.modeling.embedder import Embedder
from jude.modeling.losses import CombinedLoss
from jude.optim import OptimLoop
from jude.training.curriculum import plan_curriculum
from jude.training.trainer import (
    Batch,
    PairBatches,
    StepLoss,
    StepTexts,
    TokenCache,
    check_training_pairs,
    mine_negatives,
    pick_negatives,
    render_texts,
    seed_everything,
    train_embedder,
    train_step,
)

ROOT = Path(__file__).resolve().parents[2]
FULL_SUITE = {"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.5}
LORA = LoRAConfig(r=4, alpha=8, dropout=0.0)


@pytest.fixture(scope="module")
def no_dropout_bert(tiny_bert_dir, tmp_path_factory):
    """The tiny BERT with hidden and attention dropout off: both paths then compute one function."""
    from transformers import AutoConfig

    path = tmp_path_factory.mktemp("tiny-bert-no-dropout")
    shutil.copytree(tiny_bert_dir, path, dirs_exist_ok=True)
    cfg = AutoConfig.from_pretrained(path)
    cfg.hidden_dropout_prob = cfg.attention_probs_dropout_prob = 0.0
    cfg.save_pretrained(path)
    return path


def _smoke(base) -> tuple[ModelConfig, TrainConfig]:
    """configs/train_smoke.yaml's model and train sections, on ``base``."""
    params = yaml.safe_load((ROOT / "configs" / "train_smoke.yaml").read_text())["parameters"]
    cfg = TrainPipelineConfig.model_validate({k: params[k] for k in ("model", "train")})
    return cfg.model.model_copy(update={"base_model": str(base)}), cfg.train


def _reference_step(embedder: Embedder, step_loss: StepLoss, b: Batch, member_texts, job_texts) -> float:
    """The plain step: tokenise the batch, one padded forward per tower, loss, backward."""
    lengths = embedder.meta.max_lengths
    q = embedder.embed_texts([member_texts[b.view][m] for m in b.member_ids], lengths[b.view])  # (B, D)
    d_texts = [job_texts[j] for j in b.job_ids] + [job_texts[j] for row in b.negative_ids for j in row]
    d_all = embedder.embed_texts(d_texts, lengths["job"])  # (B + B*K, D)
    loss = step_loss(b, q, d_all)
    loss.backward()
    return float(loss.detach())


def _reference_train(pairs, jobs, members, model_cfg, train, loss_cfg, val_set):
    """train_embedder written out plainly: the same seeds, batches and negatives, the plain step."""
    seed_everything(train.seed)
    embedder = Embedder.trainable(model_cfg, LORA)
    criterion = CombinedLoss.from_config(loss_cfg, embedder.dimension)
    pos = pairs[pairs["label"] == 1]
    member_texts, job_texts = render_texts(embedder, pos, jobs, members, list(train.member_views))
    step_loss = StepLoss.from_pairs(criterion, pairs, jobs)
    plan = plan_curriculum(loss_cfg.curriculum, len(pos) // train.batch_size, total_steps=train.max_steps)
    params = embedder.trainable_parameters() + [p for p in criterion.parameters() if p.requires_grad]
    loop = OptimLoop(
        params,
        lr=train.learning_rate,
        weight_decay=train.weight_decay,
        warmup_ratio=train.warmup_ratio,
        total_steps=plan[-1].end,
        max_grad_norm=train.max_grad_norm,
        prefix="train",
        desc="reference",
        show_progress=False,
    )
    embedder.train()
    for phase_no, phase in enumerate(plan):
        phase_pos = pos[pos["source"].isin(phase.sources)]
        if phase_no > 0 and train.mine_negatives:
            negatives = mine_negatives(
                embedder, phase_pos, jobs, members, train.hard_negatives, train.mining_margin, train.seed + phase_no
            )  # no token cache: renders, tokenises and encodes as Embedder.encode does
            embedder.train()
        else:
            negatives = pick_negatives(phase_pos, pairs, jobs["job_id"].tolist(), train.hard_negatives, train.seed)
        batches = PairBatches(
            phase_pos["member_id"].tolist(),
            phase_pos["job_id"].tolist(),
            member_texts,
            job_texts,
            list(train.member_views),
            train.batch_size,
            train.seed + 1000 * phase_no,
            negatives,
        )
        epoch = 0
        while loop.steps < phase.end:
            for b in batches.epoch(epoch):
                value = _reference_step(embedder, step_loss, b, member_texts, job_texts)
                loop.step(value, parts=step_loss.parts, phase=phase.name)
                if loop.steps >= phase.end:
                    break
            epoch += 1
        loop.record({f"val/{k}": v for k, v in evaluate_embedder(embedder, val_set).items()}, phase=phase.name)
        embedder.train()
    embedder.eval()
    return loop.history, embedder


def _perturb_lora_b(emb: Embedder) -> None:
    """LoRA B starts at zero, which leaves A without gradient; random B makes every gradient count."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in emb.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.1)


# ---------------------------------------------------------------- the embedder's pre-tokenised path
@pytest.fixture(scope="module")
def tiny_qwen2(tmp_path_factory):
    from jude.modeling.tiny import build_tiny_decoder

    return build_tiny_decoder(tmp_path_factory.mktemp("qwen2") / "m", "qwen2", hidden_size=32)


TEXTS = [
    "a data engineer in berlin",
    "a nurse",
    "skills: python, sql, spark, kubernetes, java and react " * 6,  # cut at max_length
    "resume: i built data pipelines for ten years in london",
]


@pytest.mark.parametrize("model", ["bert", "qwen2"])
def test_cached_token_ids_pad_to_what_tokenize_gives(model, tiny_bert_dir, tiny_qwen2):
    if model == "bert":
        emb = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir)))
    else:  # left padding, EOS appended after truncation
        emb = Embedder.from_base(ModelConfig(base_model=str(tiny_qwen2), pooling="lasttoken"))
    expected = emb.tokenize(TEXTS, 24, to_device=False)
    got = emb.pad_token_ids(emb.token_ids(TEXTS, 24), to_device=False)
    assert got.keys() == expected.keys()
    for key in expected:
        assert torch.equal(got[key], expected[key]), key


def test_length_sorted_chunks_give_one_padded_forwards_embeddings_and_gradients(no_dropout_bert):
    emb = Embedder.trainable(ModelConfig(base_model=str(no_dropout_bert)), LORA)
    emb.train()
    ids = emb.token_ids(TEXTS * 3, 40)
    calls = []
    forward = emb.forward
    emb.forward = lambda features: calls.append(features["input_ids"].shape) or forward(features)

    _perturb_lora_b(emb)
    weights = torch.randn(12, emb.dimension, generator=torch.Generator().manual_seed(0))
    one = emb.embed_texts(TEXTS * 3, 40)  # (12, D), one forward padded to the longest
    (one * weights).sum().backward()
    expected = {n: p.grad.clone() for n, p in emb.named_parameters() if p.requires_grad}
    emb.zero_grad()
    calls.clear()
    chunked = emb.embed_token_ids(ids, max_batch_tokens=64)
    (chunked * weights).sum().backward()

    assert len(calls) > 2 and all(rows * width <= 64 or rows == 1 for rows, width in calls)
    torch.testing.assert_close(chunked, one, atol=1e-5, rtol=1e-5)
    for name, p in emb.named_parameters():
        if p.requires_grad:
            torch.testing.assert_close(p.grad, expected[name], atol=1e-5, rtol=1e-4, msg=name)


def test_bad_token_budgets_and_empty_ids_are_named(tiny_bert_dir):
    emb = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir)))
    with pytest.raises(ValueError, match="max_batch_tokens must be > 0 or None, got 0"):
        emb.embed_token_ids([[101, 102]], max_batch_tokens=0)
    with pytest.raises(ValueError, match="no empty id list"):
        emb.pad_token_ids([[101, 102], []])


# ---------------------------------------------------------------- one step
def test_a_step_embeds_each_distinct_text_once_shortest_first():
    tokens = TokenCache(
        members={"profile": {"m1": [1, 2, 3], "m2": [1, 2]}},
        jobs={"j1": [5, 6, 7, 8], "j2": [5], "j3": [5, 6]},
    )
    b = Batch(
        view="profile", member_ids=["m1", "m2", "m1"], job_ids=["j1", "j2", "j3"], negative_ids=[["j2"], ["j3"], ["j1"]]
    )
    st = StepTexts.of(b, tokens)
    assert len(st.ids) == 5  # m1 twice, and every job is also another pair's negative
    assert [len(s) for s in st.ids] == sorted(len(s) for s in st.ids)
    assert [st.ids[i] for i in st.q_rows] == [[1, 2, 3], [1, 2], [1, 2, 3]]
    assert [st.ids[i] for i in st.d_rows] == [[5, 6, 7, 8], [5], [5, 6], [5], [5, 6], [5, 6, 7, 8]]


def test_the_fast_step_gives_the_reference_loss_and_gradients_on_a_fixed_batch(no_dropout_bert, small_market, split):
    m = small_market
    # lengths under which the texts differ (profiles 51-111 tokens, jobs 111-167): sorting and chunking matter
    model_cfg = ModelConfig(base_model=str(no_dropout_bert), max_length_job=192, max_length_profile=128)
    train = TrainConfig(batch_size=8, hard_negatives=2, member_views=["profile"])
    seed_everything(0)
    emb = Embedder.trainable(model_cfg, LORA)
    _perturb_lora_b(emb)
    emb.train()
    criterion = CombinedLoss.from_config(LossConfig(weights=FULL_SUITE), emb.dimension)
    step_loss = StepLoss.from_pairs(criterion, split.pairs, m.jobs)
    pos = check_training_pairs(split.pairs, m.jobs, m.members, train.batch_size)
    member_texts, job_texts = render_texts(emb, pos, m.jobs, m.members, ["profile"])
    negatives = pick_negatives(pos, split.pairs, m.jobs["job_id"].tolist(), 2, seed=0)
    b = next(
        PairBatches(
            pos["member_id"].tolist(), pos["job_id"].tolist(), member_texts, job_texts, ["profile"], 8, 0, negatives
        ).epoch(0)
    )
    b.job_ids[1] = b.job_ids[0]  # a job twice and a job that is also a hard negative: embedded once
    b.negative_ids[2][0] = b.job_ids[3]
    params = emb.trainable_parameters() + list(criterion.parameters())

    torch.manual_seed(1)  # the interaction head's dropout draws the same mask on both paths
    expected_loss = _reference_step(emb, step_loss, b, member_texts, job_texts)
    expected_parts = dict(step_loss.parts)
    expected = [p.grad.clone() for p in params]
    for p in params:
        p.grad = None
    torch.manual_seed(1)
    loss = train_step(emb, step_loss, b, TokenCache.build(emb, member_texts, job_texts), train)

    assert loss == pytest.approx(expected_loss, rel=1e-5)
    assert step_loss.parts == pytest.approx(expected_parts, rel=1e-5)
    for p, g in zip(params, expected):
        torch.testing.assert_close(p.grad, g, atol=1e-6, rtol=1e-4)

    # scale.bf16: the towers under bf16 autocast, the loss in float32 on their (float) embeddings
    for p in params:
        p.grad = None
    torch.manual_seed(1)
    bf16_loss = train_step(emb, step_loss, b, TokenCache.build(emb, member_texts, job_texts), train, bf16=True)
    assert bf16_loss == pytest.approx(expected_loss, rel=2e-2) and bf16_loss != expected_loss


def test_gradcache_over_the_distinct_texts_gives_the_plain_steps_loss_and_gradients(
    no_dropout_bert, small_market, split
):
    m = small_market
    emb = Embedder.trainable(ModelConfig(base_model=str(no_dropout_bert), max_length_job=64), LORA)
    _perturb_lora_b(emb)
    emb.train()
    criterion = CombinedLoss.from_config(LossConfig(weights={"infonce": 1.0}, learn_temperature=True), emb.dimension)
    step_loss = StepLoss.from_pairs(criterion, split.pairs, m.jobs)
    pos = check_training_pairs(split.pairs, m.jobs, m.members, 8)
    member_texts, job_texts = render_texts(emb, pos, m.jobs, m.members, ["profile"])
    tokens = TokenCache.build(emb, member_texts, job_texts)
    negatives = pick_negatives(pos, split.pairs, m.jobs["job_id"].tolist(), 1, seed=0)
    b = next(
        PairBatches(
            pos["member_id"].tolist(), pos["job_id"].tolist(), member_texts, job_texts, ["profile"], 8, 0, negatives
        ).epoch(0)
    )
    params = emb.trainable_parameters() + list(criterion.parameters())
    results = []
    for chunk in (None, 3):
        loss = train_step(emb, step_loss, b, tokens, TrainConfig(batch_size=8, gradcache_chunk=chunk))
        results.append((loss, [p.grad.clone() for p in params]))
        for p in params:
            p.grad = None
    (plain, plain_grads), (cached, cached_grads) = results
    assert cached == pytest.approx(plain, rel=1e-5)
    for g, want in zip(cached_grads, plain_grads):
        torch.testing.assert_close(g, want, atol=1e-6, rtol=1e-4)


def test_only_lora_and_the_loss_parameters_train_and_frozen_weights_get_no_gradient(tiny_bert_dir, small_market, split):
    m = small_market
    emb = Embedder.trainable(ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64), LORA)
    trainable = [n for n, p in emb.named_parameters() if p.requires_grad]
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)  # no embedding, no LayerNorm
    criterion = CombinedLoss.from_config(LossConfig(weights=FULL_SUITE), emb.dimension)
    pos = check_training_pairs(split.pairs, m.jobs, m.members, 8)
    member_texts, job_texts = render_texts(emb, pos, m.jobs, m.members, ["profile"])
    b = Batch("profile", pos["member_id"].tolist()[:8], pos["job_id"].tolist()[:8], [])
    emb.train()
    train_step(
        emb,
        StepLoss.from_pairs(criterion, split.pairs, m.jobs),
        b,
        TokenCache.build(emb, member_texts, job_texts),
        TrainConfig(),
    )
    assert all(p.grad is None for p in emb.parameters() if not p.requires_grad)
    assert all(p.grad is not None for p in emb.parameters() if p.requires_grad)


# ---------------------------------------------------------------- whole runs
def test_mining_from_cached_ids_picks_the_same_negatives(tiny_bert_dir, small_market, split):
    m = small_market
    emb = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=48))
    pos = check_training_pairs(split.pairs, m.jobs, m.members, 8)
    tokens = TokenCache.build(emb, *render_texts(emb, pos, m.jobs, m.members, ["profile"]))
    plain = mine_negatives(emb, pos, m.jobs, m.members, k=2, margin=0.05, seed=3)
    cached = mine_negatives(emb, pos, m.jobs, m.members, k=2, margin=0.05, seed=3, tokens=tokens)
    assert cached == plain


@pytest.mark.parametrize(
    ("loss_cfg", "lengths"),
    [
        (LossConfig(), {}),  # the smoke config as it is: InfoNCE, its token budgets
        (
            LossConfig(
                weights=FULL_SUITE,
                curriculum=[
                    {"name": "relevance", "sources": ["relevance"], "steps_fraction": 0.5},
                    {"name": "mixed", "sources": ["relevance", "engagement"], "steps_fraction": 0.5},
                ],
            ),
            {"max_length_job": 192, "max_length_profile": 128},  # texts of varied length: sorting, several chunks
        ),
    ],
    ids=["smoke", "full-suite-curriculum-mining"],
)
def test_smoke_training_gives_the_reference_loop_losses_and_metrics(
    loss_cfg, lengths, tmp_path, no_dropout_bert, small_market, split
):
    m = small_market
    model_cfg, train = _smoke(no_dropout_bert)
    model_cfg = model_cfg.model_copy(update=lengths)
    # batch 8: the small marketplace's relevance phase has < 16 pairs; no periodic validation: the reference loop
    # validates at phase ends only
    train = train.model_copy(update={"batch_size": 8, "eval_every_steps": 0})
    res = train_embedder(
        split.pairs,
        m.jobs,
        m.members,
        model_cfg,
        LORA,
        train,
        tmp_path / "m",
        loss_cfg=loss_cfg,
        val_set=split.val,
        show_progress=False,
    )
    ref_history, ref_model = _reference_train(split.pairs, m.jobs, m.members, model_cfg, train, loss_cfg, split.val)

    assert len(res.history) == len(ref_history) == train.max_steps + len(loss_cfg.curriculum or [None])
    for got, want in zip(res.history, ref_history):
        assert got.keys() == want.keys() and got.get("phase") == want.get("phase")
        for key in want:
            if key.startswith(("train/", "val/")):
                assert got[key] == pytest.approx(want[key], rel=1e-4, abs=1e-6), (got["step"], key)
    texts = ref_model.render("job", m.jobs.head(5))
    torch.testing.assert_close(
        torch.from_numpy(Embedder.load(tmp_path / "m").encode(texts)),
        torch.from_numpy(ref_model.encode(texts)),
        atol=1e-5,
        rtol=1e-4,
    )
