"""SIGTERM / SIGINT stop the whole run; a kill -9 is cleaned up by the next run (zenml_glue/stop.py).

The pipeline tests run ``python run.py --pipeline train`` on configs/train_smoke.yaml
with a tiny random base model (so a run takes about a minute), all on one isolated
store, and send the signal at a known moment: a step held by the test-only
``JUDE_TEST_PAUSE_AT`` hook, a training loop that has logged its first loss, or
an MLflow call held by the test. The last test kills a run with SIGKILL and then
trains to the end on the same store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import yaml
from mlflow.tracking import MlflowClient

from jude.registry import mlflow_registry as reg

ROOT = Path(__file__).resolve().parents[2]
EXIT_WITHIN_S = 30  # from the signal to the exit code
TRAIN_STEPS = [  # the smoke config's DAG, in the order the local orchestrator runs it
    "load_marketplace",
    "retrieve_candidates",
    "generate_labels",
    "split_pairs",
    "finetune_embedder",
    "train_teacher",
    "distill_embedder",
    "evaluate_retrieval",
    "register_embedder",
]  # the store's config registers the fine-tuned model (no select_candidate step; see the store fixture)


# --- the pieces, fast ------------------------------------------------------------------------------------------


def test_a_signal_raises_run_stopped_and_later_ones_wait_for_the_cleanup():
    code = """
import os, signal, sys
from zenml_glue import stop
assert "zenml" not in sys.modules and "mlflow" not in sys.modules
stop.install()
try:
    os.kill(os.getpid(), signal.SIGTERM)
    for _ in range(10**6):
        pass
    raise SystemExit("the signal did not stop the loop")
except stop.RunStopped as e:
    print("stopped", e.signame, e.exit_code)
os.kill(os.getpid(), signal.SIGINT)  # during the cleanup: reported, not raised
for _ in range(10**5):
    pass
try:
    stop.raise_if_requested()  # what every later step does before it starts
except stop.RunStopped as e:
    print("refused", e.signame)
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.split("\n")[:2] == ["stopped SIGTERM 143", "refused SIGTERM"]
    assert "SIGINT received while stopping" in res.stderr


def test_a_signal_inside_an_mlflow_write_stops_after_it_and_leaves_the_database_unlocked(tmp_path):
    """The CI failure of stop 20: a stop raised inside SQLAlchemy kept the sqlite lock, the cleanup waited 20 s.

    The signal comes at 40 moments of a metric-logging loop; most land inside a database call (counted).
    Each stop must come within seconds (under load, redelivering the signal until it landed outside took
    forever: make test timed out); after it, a fresh connection must get the write lock at once, and
    MLflow's own end_run must succeed.
    """
    code = f"""
import os, signal, sqlite3, sys, threading, time
import mlflow
from zenml_glue import stop
db = {str(tmp_path / "mlflow.db")!r}
mlflow.set_tracking_uri("sqlite:///" + db)
mlflow.set_experiment("signals")
landed_inside = 0
arm = stop.arm_after_database_call
def counting(frame):
    global landed_inside
    landed_inside += 1
    arm(frame)
stop.arm_after_database_call = counting
for i in range(40):
    stop._requested, stop._raised = None, False
    stop.install()
    mlflow.start_run()
    delay = 0.05 + 0.0037 * i
    threading.Timer(delay, os.kill, (os.getpid(), signal.SIGTERM)).start()
    started = time.monotonic()
    try:
        step = 0
        while True:
            mlflow.log_metric("train/loss", 1.0, step=step)
            step += 1
            if time.monotonic() - started > delay + 10:
                sys.exit(f"stop {{i}}: still logging 10 s after the signal")
    except stop.RunStopped:
        pass
    free = sqlite3.connect(db, timeout=0.5)
    try:
        free.execute("BEGIN IMMEDIATE")
        free.rollback()
    except sqlite3.OperationalError as e:
        sys.exit(f"stop {{i}}: the database is still locked ({{e}})")
    free.close()
    mlflow.end_run("FAILED")
print("inside", landed_inside)
"""
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    inside = int(res.stdout.split()[-1])
    assert inside >= 1, "no signal landed inside a database call: the test did not exercise the deferral"


class _Stop(BaseException):
    pass


@pytest.fixture()
def raising_sigterm():
    """SIGTERM raises _Stop in this test (the pytest process's handler is restored afterwards)."""

    def handle(signum, frame):
        raise _Stop()

    previous = signal.signal(signal.SIGTERM, handle)
    yield
    signal.signal(signal.SIGTERM, previous)


@pytest.fixture()
def model_dir(tmp_path):
    path = tmp_path / "model"
    path.mkdir()
    (path / "jude.json").write_text("{}")
    return path


def _log_version(model_dir):
    reg.configure(experiment="jude-test")
    with mlflow.start_run():
        return reg.log_model_version(model_dir, "jude-embedder", first_champion=(True, "beats the base model (test)"))


def test_a_signal_during_the_registry_writes_waits_until_the_version_is_complete(
    mlflow_uri, model_dir, raising_sigterm, monkeypatch
):
    register_model = mlflow.register_model

    def signalled_register_model(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives between the version and its aliases
        return register_model(*args, **kwargs)

    monkeypatch.setattr(mlflow, "register_model", signalled_register_model)
    with pytest.raises(_Stop):
        _log_version(model_dir)
    assert reg.get_version("jude-embedder", "challenger").version == "1"
    assert reg.get_version("jude-embedder", "champion").version == "1"


def test_a_failure_half_way_removes_the_version_and_gives_challenger_back(mlflow_uri, model_dir, monkeypatch):
    assert _log_version(model_dir).version == "1"
    set_alias = MlflowClient.set_registered_model_alias

    def failing_for_version_2(self, name, alias, version):
        if str(version) == "2":
            raise ConnectionError("registry went away")
        return set_alias(self, name, alias, version)

    monkeypatch.setattr(MlflowClient, "set_registered_model_alias", failing_for_version_2)
    with pytest.raises(ConnectionError):
        _log_version(model_dir)
    assert [str(v.version) for v in MlflowClient().search_model_versions("name='jude-embedder'")] == ["1"]
    assert reg.get_version("jude-embedder", "challenger").version == "1"


def test_only_runs_whose_process_is_gone_are_marked_killed(mlflow_uri):
    reg.configure(experiment="jude")
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid no longer exists
    owners = {
        "killed": {reg.OWNER_HOST_TAG: socket.gethostname(), reg.OWNER_PID_TAG: str(gone.pid)},
        "alive": {reg.OWNER_HOST_TAG: socket.gethostname(), reg.OWNER_PID_TAG: str(os.getpid())},
        "other host": {reg.OWNER_HOST_TAG: "elsewhere", reg.OWNER_PID_TAG: str(gone.pid)},
        "untagged": {},
    }
    client = MlflowClient()
    ids = {}
    for name, tags in owners.items():
        run = client.create_run(client.get_experiment_by_name("jude").experiment_id, run_name=name, tags=tags)
        ids[name] = run.info.run_id
    assert reg.fail_stale_runs("jude") == [ids["killed"]]
    assert {name: client.get_run(i).info.status for name, i in ids.items()} == {
        "killed": "KILLED",
        "alive": "RUNNING",
        "other host": "RUNNING",
        "untagged": "RUNNING",
    }


# --- whole runs ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory, tiny_bert_dir):
    """One isolated ZenML + MLflow store for the runs of this module, and the smoke config on a tiny base model."""
    path = tmp_path_factory.mktemp("signals")
    config = yaml.safe_load((ROOT / "configs" / "train_smoke.yaml").read_text())
    config["parameters"]["model"]["base_model"] = str(tiny_bert_dir)
    # a random tiny model barely moves in six steps: register the fine-tuned model whatever the promotion rule says
    # (these tests are about signals around registration, not about whether it beats its base)
    config["parameters"]["ablation"]["register_model"] = "finetuned"
    (path / "smoke.yaml").write_text(yaml.safe_dump(config))
    config["parameters"]["train"]["max_steps"] = 100_000  # trains until the signal comes
    (path / "long.yaml").write_text(yaml.safe_dump(config))
    return path


def _env(store: Path, pause_at: str | None = None) -> dict:
    env = {
        **os.environ,
        "ZENML_CONFIG_PATH": str(store / "zenml"),
        "ZENML_LOCAL_STORES_PATH": str(store / "zenml" / "local_stores"),
        "JUDE_HOME": str(store),
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    env.pop("JUDE_TEST_PAUSE_AT", None)
    if pause_at:
        env["JUDE_TEST_PAUSE_AT"] = pause_at
    return env


def _start(store: Path, config: str, pause_at: str | None = None, argv: list[str] | None = None) -> subprocess.Popen:
    out = open(store / "last-run.log", "w")  # noqa: SIM115  (closed with the process)
    args = argv or [str(ROOT / "run.py")]
    return subprocess.Popen(
        [sys.executable, *args, "--pipeline", "train", "--config", str(store / config)],
        cwd=ROOT,
        env=_env(store, pause_at),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _log(store: Path) -> str:
    return (store / "last-run.log").read_text(errors="replace")[-4000:]


def _wait_for(condition, proc: subprocess.Popen, store: Path, what: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}:\n{_log(store)}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s:\n{_log(store)}"
        time.sleep(0.2)


def _paused(store: Path, step: str) -> Path:
    return store / ".jude" / f"paused-at-{step}"


def _signal(proc: subprocess.Popen, store: Path, signum: int) -> int:
    """Send ``signum``; the exit code, which must come within EXIT_WITHIN_S."""
    start = time.monotonic()
    proc.send_signal(signum)
    try:
        code = proc.wait(timeout=EXIT_WITHIN_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"still running {EXIT_WITHIN_S} s after {signal.Signals(signum).name}:\n{_log(store)}")
    assert time.monotonic() - start < EXIT_WITHIN_S
    return code


def _client(store: Path) -> MlflowClient:
    uri = f"sqlite:///{store / '.jude' / 'mlflow.db'}"
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _mlflow_runs(store: Path) -> list:
    """The runs of the 'jude' experiment, newest first."""
    client = _client(store)
    exp = client.get_experiment_by_name("jude")
    return client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"]) if exp else []


def _versions(store: Path) -> list:
    return _client(store).search_model_versions("name='jude-embedder'")


def _zenml_runs(store: Path) -> list[dict]:
    """The ZenML runs, newest first: name, status and each started step's status (read in a fresh interpreter)."""
    code = (
        "import json; from zenml.client import Client; "
        "print(json.dumps([{'name': r.name, 'status': r.status.value, "
        "'steps': {n: s.status.value for n, s in r.steps.items()}} "
        "for r in Client().list_pipeline_runs(sort_by='desc:created', size=20)]))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(store), capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _assert_stopped(store: Path, code: int, signum: int, failed_step: str, mlflow_run: bool = True) -> None:
    assert code == 128 + signum, _log(store)
    assert f"stopped by {signal.Signals(signum).name}" in _log(store)
    run = _zenml_runs(store)[0]
    assert run["status"] == "failed"
    assert run["steps"][failed_step] == "failed"
    assert set(run["steps"]) == set(TRAIN_STEPS[: TRAIN_STEPS.index(failed_step) + 1])  # none started after it
    newest = _mlflow_runs(store)
    if mlflow_run:
        assert newest[0].info.run_name == run["name"] and newest[0].info.status == "FAILED"
    else:  # the signal came before any step with the experiment tracker
        assert all(r.info.run_name != run["name"] for r in newest)
    assert _versions(store) == []


@pytest.mark.slow
def test_sigterm_during_finetuning_stops_the_whole_run(store):
    proc = _start(store, "long.yaml", pause_at="finetune_embedder")
    _wait_for(_paused(store, "finetune_embedder").exists, proc, store, "pause at finetune_embedder")
    _paused(store, "finetune_embedder").unlink()  # let it train ...

    def training():
        runs = _mlflow_runs(store)
        return bool(runs) and runs[0].info.status == "RUNNING" and "train/loss" in runs[0].data.metrics

    _wait_for(training, proc, store, "training loss in MLflow")
    code = _signal(proc, store, signal.SIGTERM)  # ... and stop it in the middle of the loop
    _assert_stopped(store, code, signal.SIGTERM, "finetune_embedder")


@pytest.mark.slow
def test_sigterm_during_registration_registers_nothing(store):
    """The signal lands inside register_embedder's MLflow logging: the eval set is logged, the model not yet."""
    hold_log_model = f"""
import pathlib, sys, time
import mlflow.pyfunc
from zenml.utils import source_utils
sys.path.insert(0, {str(ROOT)!r})
source_utils.set_custom_source_root({str(ROOT)!r})
import run
marker = pathlib.Path({str(_paused(store, "log_model"))!r})
log_model = mlflow.pyfunc.log_model
def held_log_model(*args, **kwargs):
    marker.touch()
    while marker.exists():
        time.sleep(0.05)
    return log_model(*args, **kwargs)
mlflow.pyfunc.log_model = held_log_model
sys.exit(run.main(sys.argv[1:]))
"""
    proc = _start(store, "smoke.yaml", argv=["-c", hold_log_model])
    _wait_for(_paused(store, "log_model").exists, proc, store, "registration")
    code = _signal(proc, store, signal.SIGTERM)
    _assert_stopped(store, code, signal.SIGTERM, "register_embedder")


@pytest.mark.slow
def test_sigint_during_label_generation_stops_before_anything_is_tracked(store):
    proc = _start(store, "smoke.yaml", pause_at="generate_labels")
    _wait_for(_paused(store, "generate_labels").exists, proc, store, "pause at generate_labels")
    code = _signal(proc, store, signal.SIGINT)
    _assert_stopped(store, code, signal.SIGINT, "generate_labels", mlflow_run=False)


@pytest.mark.slow
def test_after_a_kill_9_the_next_run_marks_it_killed_and_trains_to_the_end(store):
    proc = _start(store, "smoke.yaml", pause_at="finetune_embedder")
    _wait_for(_paused(store, "finetune_embedder").exists, proc, store, "pause at finetune_embedder")
    proc.kill()
    proc.wait()
    killed = _mlflow_runs(store)[0]
    assert killed.info.status == "RUNNING"  # nothing could end it

    res = subprocess.run(
        [sys.executable, "run.py", "--pipeline", "train", "--config", str(store / "smoke.yaml")],
        cwd=ROOT,
        env=_env(store),
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"MLflow run {killed.info.run_id} was left RUNNING" in res.stdout
    assert _client(store).get_run(killed.info.run_id).info.status == "KILLED"
    newest = _mlflow_runs(store)[0]
    assert newest.info.status == "FINISHED"
    # the first version ever: no stopped run before it registered anything
    assert [(str(v.version), v.run_id) for v in _versions(store)] == [("1", newest.info.run_id)]
