"""scripts/team_concurrent_check.py's bookkeeping, on stand-in commands (the real run needs the team servers)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("team_concurrent_check", ROOT / "scripts" / "team_concurrent_check.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)

SAYS = "import sys, time; time.sleep({s}); print('jude: registered jude-embedder v{v} (finetuned) as {a}')"


def test_commands_started_together_are_timed_with_their_outcome_and_load(tmp_path):
    runner = check.Runner(tmp_path, None, {})
    a = [sys.executable, "-c", SAYS.format(s=0.5, v=1, a="champion"), "--pipeline", "train"]
    b = [sys.executable, "-c", SAYS.format(s=0.5, v=2, a="challenger") + "; sys.exit(3)", "--pipeline", "train"]
    records = runner.run({"train_a": a, "train_b": b})
    assert [r["name"] for r in records] == ["train_a", "train_b"]
    assert [r["exit_code"] for r in records] == [0, 3]
    assert records[0]["outcome"] == "jude: registered jude-embedder v1 (finetuned) as champion"
    assert records[0]["command"].startswith("JUDE_TEAM=1 ") and 0.4 < records[0]["seconds"] < 60
    assert len(records[0]["load_average_start"]) == 3 and records[0]["load_1min_while_running"]["n"] >= 1


def test_a_command_running_at_the_deadline_is_stopped_and_none_starts_after_it(tmp_path):
    runner = check.Runner(tmp_path, check.now() + dt.timedelta(seconds=2), {})
    (rec,) = runner.run({"slow": [sys.executable, "-c", "import time; time.sleep(120)"]})
    assert rec["seconds"] < 60 and rec["exit_code"] != 0 and "deadline" in rec["stopped"]
    (skipped,) = runner.run({"later": [sys.executable, "-c", "pass"]})
    assert (skipped["name"], skipped["skipped"]) == ("later", "past the deadline") and "exit_code" not in skipped


def test_two_complete_new_versions_one_per_run_pass_the_check():
    def version(v, aliases, status="READY", run="FINISHED"):
        return {"version": v, "status": status, "run_status": run, "promotion": "x", "aliases": aliases}

    before = {"versions": [version("1", ["previous"])], "aliases": {}}
    after = {"versions": [version("1", []), version("2", ["champion"]), version("3", ["challenger"])]}
    after["aliases"] = {"champion": "2", "challenger": "3"}
    trains = [
        {"exit_code": 0, "outcome": "jude: registered jude-embedder v2 (distilled) as champion — …"},
        {"exit_code": 0, "outcome": "jude: registered jude-embedder v3 (distilled) as challenger; v2 stays champion"},
    ]
    got = check.check_trainings(before, after, trains)
    assert got["two_new_versions"] and got["both_complete"] and got["each_run_its_own_version"]
    assert (got["champion"], got["challenger"], got["new_versions"]) == ("2", "3", ["2", "3"])
    after["versions"][2] = version("3", ["challenger"], run="FAILED")
    assert not check.check_trainings(before, after, trains)["both_complete"]
