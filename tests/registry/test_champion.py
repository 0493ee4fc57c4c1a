"""Without a champion, every reader says why and what to do; promotion by hand writes who and why."""

import mlflow
import pytest

from jude.cli import main
from jude.registry import mlflow_registry as reg
from jude.registry.champion import describe_versions, promote_by_hand, training_outcome
from jude.registry.uri import ModelNotFoundError, NoChampionError, resolve

NAME = "jude-embedder"
EVAL_SET = {"queries": {"q1": {"member_id": "q1"}}, "corpus": {"j1": {"job_id": "j1"}}, "relevant": {"q1": {"j1": 2}}}
KEPT = (False, "nDCG@10 0.6488 vs base model 0.3171, but recall@100 falls by 0.0787 (0.8526 vs 0.9314)")


def _register(path, verdict=KEPT):
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        return reg.log_model_version(path, NAME, eval_set=EVAL_SET, first_champion=verdict)


def _tags(version):
    return mlflow.tracking.MlflowClient().get_model_version(NAME, version).tags


def test_a_missing_champion_names_the_versions_promotion_tag_and_the_fix(mlflow_uri, saved_model):
    _register(saved_model)
    with pytest.raises(NoChampionError) as e:
        resolve(f"models:/{NAME}@champion")
    msg = str(e.value)
    assert isinstance(e.value, ModelNotFoundError)  # every reader's existing handling still applies
    assert "has no champion" in msg and "v1 (challenger): kept as challenger" in msg
    assert "recall@100 falls by 0.0787" in msg
    assert "jude registry promote VERSION --reason TEXT" in msg and "make train" in msg
    # another alias keeps the plain message
    with pytest.raises(ModelNotFoundError, match="has no alias 'previous'") as other:
        resolve(f"models:/{NAME}@previous")
    assert not isinstance(other.value, NoChampionError)


def test_promotion_by_hand_moves_the_aliases_and_writes_who_and_why(mlflow_uri, saved_model, monkeypatch):
    _register(saved_model)
    _register(saved_model, verdict=None)  # v2
    monkeypatch.setenv("JUDE_USER", "ana")
    tag = promote_by_hand(NAME, "1", "recall@100 loss accepted: the ranker reranks the top 50")
    assert tag == "promoted to champion by hand by ana — recall@100 loss accepted: the ranker reranks the top 50"
    assert reg.get_version(NAME, "champion").version == "1"
    assert _tags("1")["promotion"] == tag and _tags("1")["was_champion"] == "true"
    promote_by_hand(NAME, "2", "newer")
    assert reg.get_version(NAME, "champion").version == "2" and reg.get_version(NAME, "previous").version == "1"
    assert _tags("1")["promotion"].startswith("replaced as champion by version 2 (by hand, by ana)")
    assert resolve(f"models:/{NAME}@champion").version == "2"
    with pytest.raises(ValueError, match="needs --reason"):
        promote_by_hand(NAME, "1", "  ")
    with pytest.raises(ValueError, match="has no version '9'"):
        promote_by_hand(NAME, "9", "typo")


def test_the_cli_promotes_and_reports(mlflow_uri, saved_model, capsys):
    _register(saved_model)
    assert main(["registry", "status"]) == 0
    assert "v1 (challenger): kept as challenger" in capsys.readouterr().out
    assert main(["registry", "promote", "1", "--reason", "checked by hand on the foreign set"]) == 0
    out = capsys.readouterr().out
    assert "promoted to champion by hand by" in out and "checked by hand on the foreign set" in out
    assert reg.get_version(NAME, "champion").version == "1"
    with pytest.raises(SystemExit, match="has no version '7'"):
        main(["registry", "promote", "7", "--reason", "x"])
    assert describe_versions(mlflow.tracking.MlflowClient(), NAME).startswith("v1 (challenger, champion): promoted")


def test_the_training_outcome_line_says_champion_challenger_or_nothing():
    """The four cases of make train's last line: a first version crowned, a later version while a champion exists
    (it stays), a version kept as challenger with no champion at all, and nothing registered."""
    champion = {
        "registered": True,
        "name": NAME,
        "version": "1",
        "variant": "distilled",
        "aliases": ["challenger", "champion"],
        "promotion": "promoted to champion — the first version: nDCG@10 0.71 vs base 0.30",
        "champion": "1",
    }
    assert training_outcome(champion) == (
        "jude: registered jude-embedder v1 (distilled) as champion — promoted to champion — the first version: "
        "nDCG@10 0.71 vs base 0.30"
    )
    waiting = "waiting for the promotion gate — registered as challenger; `python run.py --pipeline deploy` compares"
    later = {**champion, "version": "2", "aliases": ["challenger"], "promotion": f"{waiting} it with champion v1"}
    line = training_outcome(later)
    assert line.startswith("jude: registered jude-embedder v2 (distilled) as challenger; v1 stays champion — waiting")
    assert "NO CHAMPION" not in line and "the gate (v2 against champion v1)" in line
    assert "jude registry promote 2 --reason TEXT" in line
    # a record from before the champion was recorded: the registration's tag names it
    assert training_outcome({k: v for k, v in later.items() if k != "champion"}) == line
    kept = {
        **champion,
        "aliases": ["challenger"],
        "promotion": "kept as challenger — recall@100 falls by 0.08",
        "champion": None,
    }
    line = training_outcome(kept)
    assert "as challenger only, NO CHAMPION — kept as challenger — recall@100 falls by 0.08" in line
    assert "jude registry promote 1 --reason TEXT" in line
    assert training_outcome({k: v for k, v in kept.items() if k != "champion"}) == line
    # a later version while no version is champion (the first one was kept back)
    orphan = {**later, "promotion": f"{waiting} it with the last champion, or else the base model", "champion": None}
    assert "as challenger only, NO CHAMPION" in training_outcome(orphan)
    assert "as challenger only, NO CHAMPION" in training_outcome({k: v for k, v in orphan.items() if k != "champion"})
    nothing = {"registered": False, "name": NAME, "reason": "no candidate passes the promotion rule (...)"}
    assert training_outcome(nothing).startswith("jude: NOTHING REGISTERED for jude-embedder and no champion: no cand")


def test_the_outcome_of_a_second_version_names_the_champion_it_waits_for(mlflow_uri, saved_model):
    """The registry's own record (as register_embedder builds it): v1 crowned, v2 registered while v1 is champion."""

    def outcome(info):
        champion = reg.get_version(NAME, "champion")
        record = {
            "registered": True,
            "name": NAME,
            "version": info.version,
            "variant": "finetuned",
            "aliases": info.aliases,
            "promotion": _tags(info.version)["promotion"],
            "champion": champion.version if champion else None,
        }
        return training_outcome(record), training_outcome({k: v for k, v in record.items() if k != "champion"})

    first, _ = outcome(_register(saved_model, verdict=(True, "nDCG@10 0.70 vs base model 0.31")))
    assert first.startswith("jude: registered jude-embedder v1 (finetuned) as champion — promoted to champion")
    second, from_tag = outcome(_register(saved_model, verdict=None))
    assert second.startswith("jude: registered jude-embedder v2 (finetuned) as challenger; v1 stays champion")
    assert "NO CHAMPION" not in second and from_tag == second


def test_monitor_bootstrap_and_ranker_stop_with_the_same_reason(mlflow_uri, saved_model):
    """Every pipeline after training reads the champion through jude.registry.uri.resolve: each stops before any
    work with the versions' promotion tags and the fix, not a bare 'no alias'."""
    from jude.bootstrap.run import resolve_model
    from jude.config import BootstrapConfig, ModelConfig, MonitorConfig, RankerConfig, RegistryConfig
    from jude.monitoring.windows import load_monitored_model
    from jude.ranker.run import RankerError, resolve_models

    _register(saved_model)
    uri = f"models:/{NAME}@champion"
    with pytest.raises(NoChampionError) as monitor:
        load_monitored_model(MonitorConfig(), RegistryConfig(tracking_uri=mlflow_uri))
    with pytest.raises(NoChampionError) as bootstrap:
        resolve_model(BootstrapConfig(model_uri=uri), mlflow_uri)
    with pytest.raises(RankerError) as ranker:
        resolve_models(RankerConfig(model_uri=uri), ModelConfig(), mlflow_uri)
    for e in (monitor, bootstrap, ranker):
        msg = str(e.value)
        assert "v1 (challenger): kept as challenger — the first version: nDCG@10 0.6488" in msg, msg
        assert "jude registry promote VERSION --reason TEXT" in msg and "run the train pipeline first" not in msg
