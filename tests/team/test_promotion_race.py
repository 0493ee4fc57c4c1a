"""Two promotion gates at once never leave ``champion`` on a version that lost (or never met) the better one.

The race, made deterministic: gate A reads challenger v2 and champion v1, and is slow to compare them (its
ranking waits). Meanwhile v3, the best of the three, is registered as challenger and gate B runs. Without
serialisation B compares v3 with v1 and promotes it, then A finishes and overwrites ``champion`` with v2: the
version v3 beats, kept as champion although no comparison ever put it above v3. With the promotion lock
(``jude.registry.lock``), v3's registration and gate B wait for A; B then compares v3 with the new champion v2 and
v3 ends as champion, v2 as ``previous``.

Run on the embedded sqlite store (file lock) and, marked ``services``, against a real MLflow tracking server
with the PostgreSQL advisory lock that team mode uses (``tests/team/conftest.py``).
"""

from __future__ import annotations

import threading
from contextlib import nullcontext

import mlflow
import pytest

from jude.config import ModelConfig, PromotionConfig
from jude.registry import mlflow_registry as reg
from jude.registry.lock import promotion_lock
from jude.registry.promotion import promote_challenger

CFG = PromotionConfig(min_ndcg_gain=0.01, max_recall_drop=0.0, pool_depth=0, min_queries=1)
JOBS = [f"j{i}" for i in range(1, 10)]
EVAL_SET = {
    "queries": {"q1": {"member_id": "q1"}},
    "corpus": {j: {"job_id": j} for j in JOBS},
    "relevant": {"q1": {"j1": 2}},
}
# where each version ranks the one relevant job: v3 > v2 > v1
TOPS = {"1": ["j5", "j6", "j7", "j1"], "2": ["j5", "j1", "j6"], "3": ["j1", "j5", "j6"]}
BEATS_BASE = (True, "beats the base model (test)")


def _register(path, name, first_champion=None):
    reg.configure(experiment="jude-race-test")
    with mlflow.start_run():
        kwargs = {} if first_champion is None else {"first_champion": first_champion}
        return reg.log_model_version(path, name, eval_set=EVAL_SET, **kwargs).version


def _rank(model, eval_set, cfg):
    key = "base" if isinstance(model, ModelConfig) else model.version
    return {"q1": {j: 1.0 - 0.01 * i for i, j in enumerate(TOPS[key])}}


def race(model_dir, name, lock) -> dict:
    """Gate A (slow) and gate B (v3's) overlapping; returns the aliases and both decisions."""
    assert _register(model_dir, name, BEATS_BASE) == "1"  # v1: champion
    assert _register(model_dir, name) == "2"  # v2: challenger
    a_comparing, b_done = threading.Event(), threading.Event()
    decisions, errors = {}, []

    def slow_rank(model, eval_set, cfg):
        a_comparing.set()
        b_done.wait(timeout=4)  # without the lock B finishes meanwhile; with it, B cannot start until A is done
        return _rank(model, eval_set, cfg)

    def gate(label, rank):
        try:
            decisions[label] = promote_challenger(name, CFG, rank=rank, lock=lock)
        except Exception as e:  # surfaced by the assertion below
            errors.append(e)
        finally:
            if label == "B":
                b_done.set()

    a = threading.Thread(target=gate, args=("A", slow_rank))
    a.start()
    assert a_comparing.wait(timeout=60)
    assert _register(model_dir, name) == "3"  # v3 registered while A compares (waits for A under the lock)
    b = threading.Thread(target=gate, args=("B", _rank))
    b.start()
    a.join(timeout=120)
    b.join(timeout=120)
    assert not errors, errors
    return {
        "champion": reg.get_version(name, "champion").version,
        "previous": reg.get_version(name, "previous").version,
        "A": decisions["A"],
        "B": decisions["B"],
    }


def _serialised(result):
    assert result["A"].promoted and result["A"].challenger_version == "2"
    assert result["B"].promoted and result["B"].compared_with == "champion v2"
    assert (result["champion"], result["previous"]) == ("3", "2")


def _unserialised(result):
    # both gates compared with v1; the slower one wrote last: champion is v2, which v3 beats
    assert result["B"].compared_with == "champion v1" and result["A"].compared_with == "champion v1"
    assert result["champion"] == "2"


def _no_lock(name):
    return nullcontext()


def test_racing_gates_are_serialised_by_the_file_lock(mlflow_uri, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    _serialised(race(model, "jude-embedder", promotion_lock))


def test_without_the_lock_the_race_leaves_champion_on_the_loser(mlflow_uri, tmp_path):
    """The same race with the lock disabled: shows that the test above can fail."""
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    _unserialised(race(model, "jude-embedder", _no_lock))


@pytest.mark.services
def test_racing_gates_on_the_tracking_server_are_serialised_by_postgres(tracking, tiny_model_dir, model_name):
    import os

    assert os.environ["JUDE_PROMOTION_LOCK"].startswith("postgresql://")
    _serialised(race(tiny_model_dir, model_name, promotion_lock))


@pytest.mark.services
def test_on_the_tracking_server_the_race_without_the_lock_leaves_the_loser(tracking, tiny_model_dir, model_name):
    _unserialised(race(tiny_model_dir, model_name, _no_lock))


@pytest.mark.services
def test_the_postgres_lock_excludes_a_second_holder_and_is_freed_when_released(postgres):
    from jude.registry.lock import PromotionLockTimeout

    url = postgres.replace("postgresql+psycopg2://", "postgresql://")
    with promotion_lock("jude-lock-test", url=url) as held:
        assert "advisory lock" in held
        other = threading.Thread(target=lambda: errors.append(_try(url)))
        errors: list = []
        other.start()
        other.join()
        assert isinstance(errors[0], PromotionLockTimeout) and "jude promotion" in str(errors[0])
    assert _try(url) is None  # released


def _try(url):
    try:
        with promotion_lock("jude-lock-test", timeout=0.5, url=url):
            return None
    except Exception as e:
        return e


# One training's registration, as register_embedder does it, in its own process.
REGISTER = """
import sys, mlflow
from jude.registry import mlflow_registry as reg
name, model_dir = sys.argv[1], sys.argv[2]
reg.configure(experiment="jude-race-test")
eval_set = {"queries": {"q1": {}}, "corpus": {"j1": {}}, "relevant": {"q1": {"j1": 2}}}
with mlflow.start_run():
    version = reg.log_model_version(model_dir, name, eval_set=eval_set, first_champion=(True, "beats base")).version
print("REGISTERED", version)
"""


@pytest.mark.services
def test_two_trainings_registering_at_once_give_two_complete_versions_and_one_champion(
    tracking, tiny_model_dir, model_name, tmp_path
):
    """Two processes register a first version at the same moment: two versions, both complete, and only the
    first is crowned (the second, under the lock, finds it and waits for the gate)."""
    import os
    import subprocess
    import sys

    procs = [
        subprocess.Popen(
            [sys.executable, "-c", REGISTER, model_name, str(tiny_model_dir)],
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-1500:] for _, err in outs]
    registered = [line.split()[1] for out, _ in outs for line in out.splitlines() if line.startswith("REGISTERED ")]
    assert sorted(registered) == ["1", "2"]
    client = mlflow.tracking.MlflowClient()
    assert reg.get_version(model_name, "champion").version == "1"
    assert reg.get_version(model_name, "challenger").version == "2"
    assert client.get_model_version(model_name, "2").tags["promotion"].startswith("waiting for the promotion gate")
    for version in ("1", "2"):  # complete: the model directory and the held-out set come back from the server
        info = reg.version_info(model_name, version)
        model_dir = reg.download_model(info.uri, dst=str(tmp_path / f"v{version}"))
        assert (model_dir / "jude.json").exists()
        assert reg.load_eval_set(info)["relevant"] == {"q1": {"j1": 2}}
