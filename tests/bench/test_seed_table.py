"""bench/seed_table.py: the cells' configs carry their seeds, and the report's spread is over the cells."""

import copy
import sys
from pathlib import Path

import pytest
import yaml
from support import bench_module

from jude.config import TrainPipelineConfig

ROOT = Path(__file__).resolve().parents[2]
seed_table = bench_module("seed_table")


def test_a_cell_config_is_the_train_config_with_its_seeds_and_validates():
    base = yaml.safe_load((ROOT / "configs" / "train.yaml").read_text())
    before = copy.deepcopy(base)
    doc = seed_table.cell_parameters(base, data_seed=2, train_seed=1)
    assert base == before  # the config read is not changed
    cfg = TrainPipelineConfig.model_validate(doc["parameters"])
    assert (cfg.data.synthetic.seed, cfg.labels.seed, cfg.labels.judge_errors.seed) == (2, 2, 2)
    assert (cfg.train.seed, cfg.teacher.seed, cfg.distill.seed) == (1, 1, 1)
    # everything else is the config's own
    assert cfg.train.max_steps == base["parameters"]["train"]["max_steps"]
    assert cfg.distill.max_steps == base["parameters"]["distill"]["max_steps"]
    assert doc["enable_cache"] == base["enable_cache"]


def _cell(d, t, ft, base=0.3):
    m = {}
    for prefix in seed_table.TRUTHS:
        for variant, v in (("base", base), ("finetuned", ft)):
            m |= {f"{prefix}{variant}/ndcg_at_10": v, f"{prefix}{variant}/ndcg_at_10_ci_low": v - 0.05}
            m[f"{prefix}{variant}/ndcg_at_10_ci_high"] = v + 0.05
        lead = f"{prefix}finetuned_vs_base_ndcg_delta"
        m |= {lead: ft - base, f"{lead}_ci_low": ft - base - 0.02, f"{lead}_ci_high": ft - base + 0.02}
    tags = {"selected_candidate": "finetuned", "selection_reason": "higher validation nDCG@10"}
    return {"data_seed": d, "train_seed": t, "metrics": m, "tags": tags, "seconds": 1260.0,
            "load_average_before": 0.3, "mlflow_run_id": f"run{d}{t}"}  # fmt: skip


def test_the_report_gives_each_cell_with_its_interval_and_the_spread_over_cells():
    text = seed_table.report([_cell(1, 0, 0.42), _cell(0, 0, 0.40)])
    assert "2 cell(s)" in text
    assert text.index("d0 t0") < text.index("d1 t0")  # cells in seed order
    assert "0.4000 [0.350, 0.450]" in text and "0.4200 [0.370, 0.470]" in text
    assert "0.4100 ± 0.0141" in text  # mean and sample standard deviation of 0.40 and 0.42
    assert "1.37x ± 0.05" in text  # the ratio's spread over the cells
    assert "+0.1000 [+0.080, +0.120]" in text
    assert "finetuned (higher validation nDCG@10)" in text
    assert "| distilled | – | – | – |" in text  # a variant a cell lacks is shown as missing, not as zero


def test_kept_metrics_are_the_table_s_and_the_selection_s():
    kept = seed_table.kept_metrics(
        {
            "truth/finetuned/ndcg_at_10": 0.4,
            "truth/finetuned/recall_at_100": 1.0,
            "select/finetuned/val_ndcg_at_10": 0.5,
            "truth/finetuned_vs_base_ndcg_delta_ci_low": 0.1,
            "truth/finetuned/ndcg_at_10_ci_high": 0.45,
            "applies/finetuned/recall_at_100": 0.9,
            "applies/finetuned/recall_at_10": 0.3,
            "applies/finetuned_vs_base_recall_at_100_delta_ci_low": -0.01,
            "applies/finetuned_vs_base_ndcg_delta": 0.2,
            "foreign/finetuned/pairwise_accuracy": 0.8,
            "foreign/finetuned/look_alike/pairwise_accuracy_ci_low": 0.7,
            "foreign/finetuned_vs_base_delta": 0.05,
            "foreign/finetuned/members": 120,
        }
    )
    assert set(kept) == {
        "applies/finetuned/recall_at_100",
        "applies/finetuned_vs_base_recall_at_100_delta_ci_low",
        "applies/finetuned_vs_base_ndcg_delta",
        "foreign/finetuned/pairwise_accuracy",
        "foreign/finetuned/look_alike/pairwise_accuracy_ci_low",
        "foreign/finetuned_vs_base_delta",
        "select/finetuned/val_ndcg_at_10",
        "truth/finetuned/ndcg_at_10",
        "truth/finetuned_vs_base_ndcg_delta_ci_low",
        "truth/finetuned/ndcg_at_10_ci_high",
    }


def test_the_report_gives_the_foreign_set_and_applies_recall_when_logged():
    cells = [_cell(0, 0, 0.40), _cell(1, 0, 0.42)]
    assert "foreign set" not in seed_table.report(cells)  # cells from before the set: no empty section
    for c, (acc, lead) in zip(cells, ((0.80, 0.04), (0.70, -0.06)), strict=True):
        m = c["metrics"]
        m |= {"foreign/finetuned/pairwise_accuracy": acc, "foreign/finetuned/pairwise_accuracy_ci_low": acc - 0.04}
        m |= {"foreign/finetuned/pairwise_accuracy_ci_high": acc + 0.04, "foreign/finetuned_vs_base_delta": lead}
        m |= {"applies/finetuned/recall_at_100": acc + 0.1, "applies/finetuned_vs_base_recall_at_100_delta": lead / 2}
        m |= {"applies/finetuned_vs_base_recall_at_100_delta_ci_low": lead / 2 - 0.01}
        m |= {"applies/finetuned_vs_base_recall_at_100_delta_ci_high": lead / 2 + 0.01}
    text = seed_table.report(cells)
    assert "| finetuned: all | 0.8000 [0.760, 0.840] | 0.7000 [0.660, 0.740] | 0.7500 ± 0.0707 |" in text
    assert "| finetuned − base (paired) | +0.0400 | -0.0600 | -0.0100 ± 0.0707 |" in text
    assert "recall@100 on the test period's applies" in text
    assert "| finetuned | 0.9000 | 0.8000 | 0.8500 ± 0.0707 |" in text
    # the recall lead over base, paired, with its interval (logged by jude.evaluation.paired.variant_intervals)
    assert "| finetuned − base (paired) | +0.0200 [+0.010, +0.030] | -0.0300 [-0.040, -0.020] |" in text


def test_no_cells_is_said_plainly():
    assert seed_table.report([]) == "no cells measured yet\n"


def test_bad_cells_argument_names_the_value(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "argv", ["seed_table.py", "--cells", "1-0", "--out", str(tmp_path)])
    with pytest.raises(SystemExit, match="1-0"):
        seed_table.main()


def _store_with_run(tmp_path, params):
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.create_experiment("train")
    run = client.create_run(exp)
    for k, v in params.items():
        client.log_param(run.info.run_id, k, v)
    for name in ("truth/finetuned/ndcg_at_10", "truth/base/ndcg_at_10"):
        client.log_metric(run.info.run_id, name, 0.5)
    client.set_terminated(run.info.run_id)
    return uri, run.info.run_id


def test_a_cell_is_adopted_from_a_run_made_elsewhere_when_its_params_are_the_cells(tmp_path):
    base = yaml.safe_load((ROOT / "configs" / "train.yaml").read_text())
    steps = base["parameters"]["distill"]["max_steps"]
    uri, run_id = _store_with_run(tmp_path, {"train.seed": 0, "distill.max_steps": steps, "train.max_steps": 45})
    cell = seed_table.adopt_cell(ROOT / "configs" / "train.yaml", 0, 0, uri, tmp_path / "out")
    assert cell["mlflow_run_id"] == run_id
    assert cell["params_checked"] == ["distill.max_steps", "train.max_steps", "train.seed"]
    assert (tmp_path / "out" / "d0_t0.json").exists()


def test_a_run_of_another_cell_is_refused_by_name(tmp_path):
    uri, _ = _store_with_run(tmp_path, {"train.seed": 1})
    with pytest.raises(SystemExit, match=r"is not cell d0_t0: train.seed: run '1', cell 0"):
        seed_table.adopt_cell(ROOT / "configs" / "train.yaml", 0, 0, uri, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_cell_s_ranker_config_is_the_ranker_yaml_on_the_cell_s_marketplace_and_model():
    from jude.config import RankerPipelineConfig

    base = yaml.safe_load((ROOT / "configs" / "ranker.yaml").read_text())
    before = copy.deepcopy(base)
    doc = seed_table.ranker_parameters(base, data_seed=2, train_seed=1, model_uri="models:/jude-embedder/3")
    assert base == before
    cfg = RankerPipelineConfig.model_validate(doc["parameters"])
    assert (cfg.data.synthetic.seed, cfg.train.seed, cfg.ranker.model_uri) == (2, 1, "models:/jude-embedder/3")
    train = TrainPipelineConfig.model_validate(
        seed_table.cell_parameters(yaml.safe_load((ROOT / "configs" / "train.yaml").read_text()), 2, 1)["parameters"]
    )
    assert cfg.data == train.data and cfg.eval.max_queries == train.eval.max_queries  # the cell's test members


def test_the_ranker_of_a_cell_whose_run_registered_nothing_is_refused_by_name(tmp_path):
    (tmp_path / ".jude").mkdir()
    uri, run_id = _store_with_run(tmp_path / ".jude", {"train.seed": 0})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "d0_t0.json").write_text(f'{{"mlflow_run_id": "{run_id}"}}')
    with pytest.raises(SystemExit, match=rf"cell d0_t0's run {run_id} registered 0 model versions"):
        seed_table.run_ranker(ROOT / "configs" / "ranker.yaml", 0, 0, tmp_path, tmp_path / "out")


def test_the_report_gives_the_ranker_of_the_cells_that_ran_it():
    cells = [_cell(0, 0, 0.5), _cell(1, 0, 0.6)]
    assert "ranker" not in seed_table.report(cells)
    delta = "ranker/delta/champion_vs_base/apply_auc"
    cells[1]["ranker"] = {"metrics": {"ranker/champion/apply_auc": 0.83, delta: 0.004, delta + "_ci_low": -0.006,
                                      delta + "_ci_high": 0.013}}  # fmt: skip
    text = seed_table.report(cells)
    assert "| + registered model's embeddings | – | 0.8300 |" in text
    assert "| registered − base (paired) | – | +0.0040 [-0.006, +0.013] |" in text
