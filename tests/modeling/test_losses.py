"""The loss suite, tested as pure tensor maths (no model)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from jude.config import LOSS_NAMES, CurriculumPhase, LossConfig
from jude.modeling.losses import (
    CombinedLoss,
    InfoNCELoss,
    InteractionHead,
    LossInputs,
    LossWeights,
    PairBCELoss,
    bce_loss,
    info_nce,
    kl_distillation,
    margin_mse,
    positive_mask,
    predicate_matrix,
    v_matrix,
    vp_matrix_loss,
    vp_matrix_terms,
)


def _ce_row(logits: list[float], target: int) -> float:
    return -logits[target] + math.log(sum(math.exp(x) for x in logits))


# ---------------------------------------------------------------------------- InfoNCE
def test_info_nce_matches_hand_computation_on_2x2():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    # sim = q d^T = [[0.6, 1.0], [0.8, 0.0]]; at t = 0.5 the logits are doubled.
    expected = (_ce_row([1.2, 2.0], 0) + _ce_row([1.6, 0.0], 1)) / 2
    assert info_nce(q, d, 0.5).item() == pytest.approx(expected, rel=1e-6)


def test_info_nce_hard_negatives_enter_the_normaliser_of_their_own_query_only():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    hard = torch.tensor([[[0.5, 0.5]], [[0.0, -1.0]]])  # (B=2, K=1, D=2)
    expected = (_ce_row([1.0, 0.0, 0.5], 0) + _ce_row([0.0, 1.0, -1.0], 1)) / 2
    assert info_nce(q, d, 1.0, hard_negatives=hard).item() == pytest.approx(expected, rel=1e-6)


def test_same_job_twice_in_batch_is_masked_but_diagonal_is_not():
    q = F.normalize(torch.randn(2, 4, generator=torch.Generator().manual_seed(0)), dim=-1)
    d = torch.stack([q[0], q[0]])  # the same job for both members
    masked = info_nce(q, d, 0.1, doc_ids=["job-7", "job-7"])
    # each row keeps only its diagonal logit: cross-entropy of a single finite logit is 0
    assert masked.item() == pytest.approx(0.0, abs=1e-6)
    assert info_nce(q, d, 0.1).item() > 0.1  # unmasked, the duplicate is pushed away


def test_positives_mapping_masks_known_positive_of_the_member():
    g = torch.Generator().manual_seed(1)
    q = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    d = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    t = 0.2
    got = info_nce(q, d, t, query_ids=["m0", "m1", "m2"], doc_ids=["j0", "j1", "j2"], positives={"m0": {"j2"}})
    logits = (q @ d.T / t).tolist()
    expected = (_ce_row(logits[0][:2], 0) + _ce_row(logits[1], 1) + _ce_row(logits[2], 2)) / 3
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_positive_mask_covers_same_member_twice():
    mask = positive_mask(["m0", "m0", "m1"], ["j0", "j1", "j2"])
    assert mask.tolist() == [[True, True, False], [True, True, False], [False, False, True]]


def test_hard_negative_that_is_a_positive_is_masked():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = q.clone()
    hard = torch.tensor([[[0.9, 0.1]], [[0.1, 0.9]]])
    got = info_nce(
        q,
        d,
        1.0,
        hard_negatives=hard,
        query_ids=["m0", "m1"],
        doc_ids=["j0", "j1"],
        positives={"m0": {"j5"}},
        hard_negative_ids=[["j5"], ["j9"]],
    )
    expected = (_ce_row([1.0, 0.0], 0) + _ce_row([0.0, 1.0, 0.9], 1)) / 2
    assert got.item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_term_averages_query_to_doc_and_doc_to_query():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    d = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    # transposed sim = [[0.6, 0.8], [1.0, 0.0]]
    dq = (_ce_row([0.6, 0.8], 0) + _ce_row([1.0, 0.0], 1)) / 2
    qd = info_nce(q, d, 1.0).item()
    assert info_nce(q, d, 1.0, symmetric=True).item() == pytest.approx((qd + dq) / 2, rel=1e-6)
    assert dq != pytest.approx(qd)


def test_info_nce_rejects_bad_shapes_and_temperature():
    q = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="same shape"):
        info_nce(q, torch.zeros(3, 3), 0.1)
    with pytest.raises(ValueError, match="temperature"):
        info_nce(q, q, 0.0)
    with pytest.raises(ValueError, match="hard_negatives"):
        info_nce(q, q, 0.1, hard_negatives=torch.zeros(2, 1, 4))


def test_learned_temperature_is_a_parameter_that_gets_a_gradient():
    loss = InfoNCELoss(temperature=0.05, learn_temperature=True)
    params = dict(loss.named_parameters())
    assert "log_temperature" in params
    q = F.normalize(torch.randn(4, 8), dim=-1)
    loss(q, F.normalize(q + 0.3 * torch.randn(4, 8), dim=-1)).backward()
    assert params["log_temperature"].grad is not None and params["log_temperature"].grad.abs() > 0
    assert loss.temperature.item() == pytest.approx(0.05, rel=1e-6)


def test_learned_temperature_is_clamped_and_fixed_one_is_not_a_parameter():
    loss = InfoNCELoss(temperature=0.05, learn_temperature=True)
    with torch.no_grad():
        loss.log_temperature.fill_(math.log(1e-4))
    assert loss.temperature.item() == pytest.approx(0.01, rel=1e-6)
    assert list(InfoNCELoss(0.05).parameters()) == []
    with pytest.raises(ValueError, match=r"loss.temperature must be in \[0.01, 1\] when learned, got 0.005"):
        LossConfig(temperature=0.005, learn_temperature=True)


def test_a_module_built_with_a_bad_temperature_is_refused_by_info_nce_naming_it():
    q = F.normalize(torch.randn(2, 4), dim=-1)
    with pytest.raises(ValueError, match="temperature must be one positive value, got 0.0"):
        InfoNCELoss(temperature=0.0)(q, q)


# ---------------------------------------------------------------------------- BCE
def test_interaction_head_gives_one_logit_per_pair():
    head = InteractionHead(dim=6, hidden=16)
    assert head(torch.randn(5, 6), torch.randn(5, 6)).shape == (5,)
    with pytest.raises(ValueError, match="u and v"):
        head(torch.randn(5, 6), torch.randn(5, 4))


def test_bce_head_learns_a_toy_task():
    """Label = sign of <u, v>: a task the Hadamard feature makes easy."""
    torch.manual_seed(0)
    u, v = torch.randn(256, 8), torch.randn(256, 8)
    labels = ((u * v).sum(-1) > 0).float()
    loss_fn = PairBCELoss(dim=8, hidden=32)
    opt = torch.optim.Adam(loss_fn.parameters(), lr=1e-2)
    first = loss_fn(u, v, labels).item()
    for _ in range(150):
        opt.zero_grad()
        loss = loss_fn(u, v, labels)
        loss.backward()
        opt.step()
    loss_fn.eval()
    acc = ((loss_fn.head(u, v) > 0).float() == labels).float().mean().item()
    assert first > 0.6 and loss.item() < 0.3 and acc > 0.9


def test_bce_loss_rejects_labels_outside_0_1():
    with pytest.raises(ValueError, match=r"labels must be in \[0, 1\]"):
        bce_loss(torch.zeros(3), torch.tensor([0.0, 1.0, 2.0]))


# ---------------------------------------------------------------------------- V-matrix
GROUPS = ["a", "a", "a", "a", "b", "b", "b", "b"]
LABELS = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0])


def test_p_term_is_zero_when_predictions_match_label_means_per_predicate():
    phi = predicate_matrix({"group": GROUPS})  # constant + one-hot a, b
    assert phi.shape == (8, 3)
    probs = torch.tensor([0.25] * 4 + [0.75] * 4)  # the label means of a and b
    terms = vp_matrix_terms(probs, LABELS, features=None, predicates=phi)
    assert terms.p.item() == pytest.approx(0.0, abs=1e-7)
    assert terms.v.item() > 0  # per-example residuals remain; only the invariants hold
    # V off (tau weighs P only): the loss is the P term alone
    loss_p_only = vp_matrix_loss(probs, LABELS, None, phi, tau=1.0) - terms.v
    assert loss_p_only.item() == pytest.approx(0.0, abs=1e-7)


def test_p_term_is_positive_under_a_predicate_level_bias():
    phi = predicate_matrix({"group": GROUPS})
    biased = torch.tensor([0.25] * 4 + [0.95] * 4)  # group b over-predicted, the overall mean too
    p = vp_matrix_terms(biased, LABELS, None, phi).p.item()
    assert p == pytest.approx(((4 * -0.2) ** 2 * 2) / 64, rel=1e-5)  # constant and b columns each see -0.8
    # a bias that cancels overall but not within groups is still caught by the group predicates
    swapped = torch.tensor([0.35] * 4 + [0.65] * 4)
    assert vp_matrix_terms(swapped, LABELS, None, predicate_matrix({"group": GROUPS})).p.item() > 0
    assert vp_matrix_terms(swapped, LABELS, None, None).p.item() == pytest.approx(0.0, abs=1e-7)


def test_v_matrix_is_bounded_with_unit_diagonal():
    V = v_matrix(torch.randn(6, 3) * 100)
    assert V.min() >= 0 and V.max() <= 1
    assert torch.allclose(torch.diagonal(V), torch.ones(6))


def _outlier_batch(scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    feats = torch.randn(8, 4, generator=g)
    feats[0] = feats[0] + scale * torch.ones(4)  # example 0 moved `scale` away
    probs = torch.tensor([0.1, 0.6, 0.4, 0.2, 0.9, 0.7, 0.5, 0.3], requires_grad=True)
    return feats, probs


@pytest.mark.parametrize("bandwidth", [1.0, None])
def test_an_outlier_has_bounded_influence_on_the_vp_loss(bandwidth):
    losses, grads_on_others = [], []
    for scale in (1.0, 10.0, 100.0, 1000.0):
        feats, probs = _outlier_batch(scale)
        loss = vp_matrix_loss(probs, LABELS, feats, predicate_matrix({"group": GROUPS}), tau=1.0, bandwidth=bandwidth)
        loss.backward()
        losses.append(loss.item())
        grads_on_others.append(probs.grad[1:].clone())
    assert max(losses) <= 1 + 1.0 * 3  # residuals in [-1, 1], V in [0, 1], 3 one-hot predicates
    # far away, the outlier only meets itself: loss and the others' gradients stop changing
    assert losses[-1] == pytest.approx(losses[-2], abs=1e-6)
    assert torch.allclose(grads_on_others[-1], grads_on_others[-2], atol=1e-6)


def test_an_unbounded_kernel_lets_the_same_outlier_dominate():
    """The contrast: V = X X^T (linear kernel) grows with the outlier's distance."""
    losses, grad_norms = [], []
    for scale in (1.0, 10.0, 100.0, 1000.0):
        feats, probs = _outlier_batch(scale)
        r = LABELS - probs
        loss = r @ (feats @ feats.T) @ r / 64
        loss.backward()
        losses.append(loss.item())
        grad_norms.append(probs.grad[1:].norm().item())
    assert losses[-1] > 1e4 * losses[0]
    assert grad_norms[-1] > 100 * grad_norms[0]


def test_vp_matrix_rejects_mismatched_rows():
    with pytest.raises(ValueError, match="features must have 8 rows"):
        vp_matrix_loss(torch.full((8,), 0.5), LABELS, torch.zeros(7, 2))
    with pytest.raises(ValueError, match="predicates must have 8 rows"):
        vp_matrix_loss(torch.full((8,), 0.5), LABELS, None, torch.ones(5, 1))
    with pytest.raises(ValueError, match="tau"):
        vp_matrix_loss(torch.full((8,), 0.5), LABELS, None, tau=-1.0)


# ---------------------------------------------------------------------------- distillation
def test_margin_mse_is_zero_when_student_equals_teacher_and_positive_otherwise():
    pos, neg = torch.tensor([3.0, 1.0]), torch.tensor([[1.0, 0.5], [0.0, 2.0]])
    assert margin_mse(pos, neg, pos, neg).item() == 0.0
    # same margins on another offset: still zero
    assert margin_mse(pos + 5, neg + 5, pos, neg).item() == pytest.approx(0.0, abs=1e-6)
    assert margin_mse(pos, neg, pos * 2, neg).item() > 0


def test_kl_is_zero_when_student_equals_teacher_and_positive_otherwise():
    s = torch.randn(4, 6)
    assert kl_distillation(s, s, 0.5, 0.5).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_distillation(s, s * 10, 0.05, 0.5).item() == pytest.approx(0.0, abs=1e-5)  # same distributions
    assert kl_distillation(s, torch.randn(4, 6), 1.0, 1.0).item() > 0


def test_kl_ignores_padded_candidates_without_nan_gradients():
    s = torch.randn(2, 4, requires_grad=True)
    t = torch.randn(2, 4)
    mask = torch.tensor([[True, True, True, False], [True, True, False, False]])
    loss = kl_distillation(s, t, 1.0, 1.0, mask)
    loss.backward()
    assert torch.isfinite(s.grad).all()
    t2 = t.clone()
    t2[~mask] = 99.0
    assert kl_distillation(s, t2, 1.0, 1.0, mask).item() == pytest.approx(loss.item(), rel=1e-6)


# ---------------------------------------------------------------------------- combination
def test_unknown_loss_name_is_rejected_with_the_known_names():
    with pytest.raises(ValueError, match=r"unknown loss name\(s\) \['mnrl'\].*infonce"):
        LossWeights({"infonce": 1.0, "mnrl": 0.5})


@pytest.mark.parametrize(
    "weights, match",
    [
        ({"infonce": 0.0, "bce": 0.0}, "sum to > 0"),
        ({"infonce": 1.0, "bce": -0.5}, ">= 0"),
        ({"infonce": float("nan")}, ">= 0"),
    ],
)
def test_bad_weights_are_rejected_naming_the_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        LossWeights(weights)
    with pytest.raises(ValueError, match=match):
        LossConfig(weights=weights)


def test_combined_loss_is_the_weighted_sum_of_its_parts():
    torch.manual_seed(0)
    loss = CombinedLoss({"infonce": 1.0, "bce": 0.5, "vp_matrix": 0.25, "margin_mse": 0.1, "kl": 2.0}, dim=8)
    q, d = F.normalize(torch.randn(4, 8), dim=-1), F.normalize(torch.randn(4, 8), dim=-1)
    x = LossInputs(
        q=q,
        d=d,
        pair_u=q,
        pair_v=d,
        pair_labels=torch.tensor([1.0, 0.0, 1.0, 0.0]),
        pair_predicates=predicate_matrix({"source": ["relevance", "engagement"] * 2}),
        student_pos=torch.randn(4),
        student_neg=torch.randn(4, 2),
        teacher_pos=torch.randn(4),
        teacher_neg=torch.randn(4, 2),
        student_scores=torch.randn(4, 5),
        teacher_scores=torch.randn(4, 5),
    )
    out = loss(x)
    assert set(out.parts) == set(LOSS_NAMES)
    expected = sum(w * out.parts[n] for n, w in loss.weights.active.items())
    assert out.total.item() == pytest.approx(expected, rel=1e-5)
    out.total.backward()
    assert all(p.grad is not None for p in loss.head.parameters())


def test_combined_loss_names_missing_inputs():
    loss = CombinedLoss({"infonce": 1.0, "bce": 1.0}, dim=4)
    with pytest.raises(ValueError, match=r"'bce'.*pair_u"):
        loss(LossInputs(q=torch.randn(2, 4), d=torch.randn(2, 4)))


def test_combined_loss_from_config_builds_only_active_losses():
    cfg = LossConfig(weights={"infonce": 1.0, "kl": 0.0}, learn_temperature=True)
    loss = CombinedLoss.from_config(cfg, dim=4)
    assert loss.kl is None and loss.head is None
    assert isinstance(loss.infonce.log_temperature, nn.Parameter)


def test_loss_config_curriculum_validation():
    ok = LossConfig(
        curriculum=[
            {"name": "relevance", "sources": ["relevance"], "steps_fraction": 0.4},
            {"name": "mixed", "sources": ["relevance", "engagement"], "steps_fraction": 0.6},
        ]
    )
    assert [p.name for p in ok.curriculum] == ["relevance", "mixed"]
    with pytest.raises(ValueError, match="sum to 1"):
        LossConfig(curriculum=[{"name": "a", "sources": ["relevance"], "steps_fraction": 0.5}])
    with pytest.raises(ValueError, match="exactly one of epochs or steps_fraction"):
        CurriculumPhase(name="a", sources=["relevance"], epochs=1, steps_fraction=0.5)
    with pytest.raises(ValueError, match="not both"):
        LossConfig(
            curriculum=[
                {"name": "a", "sources": ["relevance"], "epochs": 1},
                {"name": "b", "sources": ["engagement"], "steps_fraction": 1.0},
            ]
        )
    with pytest.raises(ValueError):
        CurriculumPhase(name="a", sources=["clicks"], epochs=1)


def test_the_head_reaches_the_towers_of_unit_norm_embeddings():
    """On L2-normalised embeddings the default input scale gives the towers a BCE gradient
    comparable to InfoNCE's (without it: about 0.2%, and the BCE variant trained to the InfoNCE model)."""
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(32, 384), dim=-1).requires_grad_(True)
    d = torch.nn.functional.normalize(torch.randn(32, 384), dim=-1)  # untrained towers: InfoNCE near ln 32
    info_nce(q, d, 0.05).backward()
    g_infonce = q.grad.norm().item()

    def bce_grad(head):
        q.grad = None
        labels = torch.tensor([1.0] * 16 + [0.0] * 16)
        bce_loss(head(q, d), labels).backward()
        return q.grad.norm().item()

    torch.manual_seed(1)
    scaled = bce_grad(InteractionHead(384))
    torch.manual_seed(1)
    unscaled = bce_grad(InteractionHead(384, input_scale=1.0))
    assert InteractionHead(384).input_scale == pytest.approx(384**0.5)
    assert unscaled / g_infonce < 0.01 < scaled / g_infonce
    with pytest.raises(ValueError, match="input_scale must be > 0"):
        InteractionHead(8, input_scale=0.0)
