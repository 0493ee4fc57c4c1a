"""bench/distill_sweep.py: the rate rule keeps the config's rate unless another beats it with the paired
interval above zero on the validation members."""

from types import SimpleNamespace

from support import bench_module

distill_sweep = bench_module("distill_sweep")

from jude.evaluation.retrieval import ranking_metrics  # noqa: E402

QUERIES = [f"q{i}" for i in range(40)]
RELEVANT = {q: {f"{q}-hit": 3} for q in QUERIES}


def _run(rank_of_hit):
    """Every query's relevant job at ``rank_of_hit(query index)`` (1-based) among 10 jobs."""
    run = {}
    for i, q in enumerate(QUERIES):
        others = [f"{q}-other{k}" for k in range(9)]
        others.insert(rank_of_hit(i) - 1, f"{q}-hit")
        run[q] = {doc: 10.0 - r for r, doc in enumerate(others)}
    return run


def _choose(runs, default):
    table = SimpleNamespace(
        results={name: ranking_metrics(run, RELEVANT) for name, run in runs.items()},
        judged=SimpleNamespace(relevant=RELEVANT),
    )
    names = {float(name.removeprefix("lr")): name for name in runs}
    said = []
    return distill_sweep._choose(table, runs, names, default, "distill lr", said.append), said


def test_a_rate_that_beats_the_config_rate_on_every_member_is_chosen():
    runs = {"lr0.001": _run(lambda i: 5), "lr0.0003": _run(lambda i: 1), "lr0.003": _run(lambda i: 8)}
    choice, said = _choose(runs, default=0.001)
    assert choice == 0.0003
    assert said[-1] == "distill lr: 0.0003 (beats the config's value on validation)"


def test_a_lead_inside_the_noise_keeps_the_config_rate():
    # better on 2 of 40 members only: higher nDCG@10, but the paired interval reaches zero
    runs = {"lr0.001": _run(lambda i: 5), "lr0.0003": _run(lambda i: 1 if i < 2 else 5)}
    table_ndcg = {n: ranking_metrics(r, RELEVANT)["ndcg_at_10"] for n, r in runs.items()}
    assert table_ndcg["lr0.0003"] > table_ndcg["lr0.001"]
    choice, said = _choose(runs, default=0.001)
    assert choice == 0.001
    assert "the config's value kept" in said[-1]


def test_without_the_config_rate_the_best_rate_is_chosen():
    runs = {"lr0.0003": _run(lambda i: 3), "lr0.003": _run(lambda i: 2)}
    choice, said = _choose(runs, default=0.001)
    assert choice == 0.003 and "was not tried" in said[-1]


def test_a_stage_keeps_the_configs_steps_unless_told():
    section = SimpleNamespace(max_steps=24)
    assert distill_sweep._steps(None, section) == 24  # not the section's epochs, as it was before
    assert distill_sweep._steps(0, section) is None
    assert distill_sweep._steps(7, section) == 7


def test_distill_variants_carry_rate_weight_and_steps():
    v = distill_sweep._variants(["3e-3:1", "3e-3:3:81", "1e-3"], None, 3e-3, 1.0, 27)
    assert v == [(3e-3, 1.0, 27), (3e-3, 3.0, 81), (1e-3, 1.0, 27)]
    assert distill_sweep._variants(None, [1e-3, 3e-3], 3e-3, 1.0, 27) == [(1e-3, 1.0, 27), (3e-3, 1.0, 27)]
    assert distill_sweep._variants(None, None, 3e-3, 0.5, None) == [(3e-3, 0.5, None)]


def test_a_malformed_variant_is_named():
    import pytest

    for bad in ("3e-3:1:0", "3e-3:x", "3e-3:1:2.5", "3e-3:1:8:9"):
        with pytest.raises(SystemExit, match=bad.replace(".", r"\.")):
            distill_sweep._variants([bad], None, 3e-3, 1.0, 27)
