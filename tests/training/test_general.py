"""General text mixed into fine-tuning (train.general_mix): the packaged pairs stay outside every world and
evaluation set, bad files are named, the batches cover the pairs, and the term really trains."""

import json

import numpy as np
import pandas as pd
import pytest

from jude.config import LoRAConfig, ModelConfig, TrainConfig, TrainPipelineConfig
from jude.data import vocab
from jude.modeling.embedder import Embedder
from jude.training.general import (
    GENERAL_PAIRS,
    GeneralBatches,
    GeneralPairsError,
    general_loss,
    load_general_pairs,
)
from jude.training.trainer import train_embedder

GROUNDED = GENERAL_PAIRS.parents[1] / "grounded"
FOREIGN = GENERAL_PAIRS.parents[1] / "foreign"


def test_the_packaged_pairs_touch_no_world_and_no_evaluation_set():
    pairs = pd.read_csv(GENERAL_PAIRS, dtype=str)
    assert len(pairs) >= 200 and pairs["code"].is_unique
    world = pd.read_csv(GROUNDED / "occupations.csv", dtype=str)
    assert not set(pairs["code"]) & set(world["code"])  # training, validation, test and unseen occupations
    world_titles = set(pd.read_csv(GROUNDED / "titles.csv", dtype=str)["title"])
    assert not {q.lower() for q in pairs["query"]} & world_titles
    foreign = [json.loads(line) for f in ("jobs.jsonl", "profiles.jsonl") for line in (FOREIGN / f).open()]
    onet = {r["onet_soc"] for r in foreign if r.get("onet_soc")}
    assert not set(pairs["code"]) & onet
    assert not {c[:7] for c in pairs["code"]} & {c[:7] for c in onet}  # nor a SOC detailed occupation
    assert not {q.lower() for q in pairs["query"]} & {r["title"].lower() for r in foreign}
    assert all(vocab.role_family_of(q) is None for q in pairs["query"])  # no title of the small world


def test_a_bad_pairs_file_is_named_with_its_row_and_column(tmp_path):
    with pytest.raises(GeneralPairsError, match="no file"):
        load_general_pairs(tmp_path / "absent.csv")
    (tmp_path / "cols.csv").write_text("title,passage\na,b\n")
    with pytest.raises(GeneralPairsError, match=r"cols.csv: missing column\(s\) \['query'\]"):
        load_general_pairs(tmp_path / "cols.csv")
    (tmp_path / "empty.csv").write_text('query,passage\na,b\nc," "\n')
    with pytest.raises(GeneralPairsError, match=r"empty.csv: row 3 .*column 'passage': empty text"):
        load_general_pairs(tmp_path / "empty.csv")
    (tmp_path / "one.csv").write_text("query,passage\na,b\n")
    with pytest.raises(GeneralPairsError, match="1 pair"):
        load_general_pairs(tmp_path / "one.csv")


def test_each_pass_covers_every_pair_once_and_is_seeded():
    gb = GeneralBatches(queries=[[i] for i in range(10)], passages=[[100 + i] for i in range(10)], batch_size=3, seed=7)
    seen = [q[0] for n in range(3) for q in gb.batch(n)[0]]  # one pass: 3 batches of 3 (the ragged one dropped)
    assert len(set(seen)) == 9
    q, p = gb.batch(4)
    assert [x[0] + 100 for x in q] == [x[0] for x in p]  # queries stay with their passages
    again = GeneralBatches(gb.queries, gb.passages, 3, 7)
    assert again.batch(4) == gb.batch(4) and gb.batch(3) != gb.batch(0)
    fresh = GeneralBatches(gb.queries, gb.passages, 3, 7)
    assert [fresh.batch(n) for n in (0, 5, 1)] == [gb.batch(n) for n in (0, 5, 1)]  # the same whatever came before


def test_the_general_term_is_lower_for_matched_pairs_than_for_shuffled_ones(tiny_bert_dir):
    emb = Embedder.from_base(ModelConfig(base_model=str(tiny_bert_dir)))
    ids = emb.token_ids(["nurse", "pilot", "baker", "welder"], 16)
    same = general_loss(emb, ids, ids, temperature=0.05)  # each query is its own passage: the diagonal wins
    shifted = general_loss(emb, ids, ids[1:] + ids[:1], temperature=0.05)
    assert float(same.detach()) < float(shifted.detach())


def test_general_mix_trains_on_the_pairs_and_changes_the_model(tmp_path, tiny_bert_dir, small_market, split):
    model = ModelConfig(base_model=str(tiny_bert_dir), max_length_job=64, max_length_profile=48, max_length_resume=64)
    lora = LoRAConfig(r=4, alpha=8)
    pairs = tmp_path / "general.csv"
    pd.DataFrame(
        {"query": [f"title {i}" for i in range(12)], "passage": [f"does {i} things" for i in range(12)]}
    ).to_csv(pairs, index=False)
    outs, results = [], []
    for mix in (0.0, 1.0):
        train = TrainConfig(batch_size=8, learning_rate=5e-3, max_steps=3, general_mix=mix, general_pairs=str(pairs))
        res = train_embedder(
            split.pairs, small_market.jobs, small_market.members, model, lora, train, tmp_path / f"m{mix}",
            show_progress=False,
        )  # fmt: skip
        results.append(res)
        outs.append(Embedder.load(tmp_path / f"m{mix}").encode(["a data engineer in Berlin"]))
    assert results[0].stats["general_pairs"] == 0 and results[1].stats["general_pairs"] == 12
    general = [h["train/general"] for h in results[1].history if "train/general" in h]
    assert len(general) == 3 and all(np.isfinite(general))
    assert not any("train/general" in h for h in results[0].history)
    assert not np.allclose(outs[0], outs[1], atol=1e-6)


def test_general_mix_is_refused_on_the_hf_trainer_path():
    with pytest.raises(ValueError, match="does not mix general text"):
        TrainPipelineConfig.model_validate(
            {"train": {"general_mix": 0.5}, "scale": {"deepspeed": "configs/deepspeed_zero1.json"}}
        )
