"""bench/retrieval_bench.py's "what freshness is worth" replay on a hand-made stream whose answer is known."""

from __future__ import annotations

import numpy as np
import pandas as pd
from support import bench_module

bench = bench_module("retrieval_bench")

DAY = pd.Timedelta(days=1)
T0 = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday; epoch weeks start on Thursdays (2026-01-01, 2026-01-08)


class FakeEncoder:
    """Each text's vector by a rule: a job whose rendered text says 'near' points where every member does."""

    style = "plain"

    def texts(self, entity_type, entities):
        return [f"{entity_type}:{e.get('description', e.get('summary'))}" for e in entities]

    def encode(self, entity_type, texts):
        out = []
        for t in texts:
            v = np.zeros(4, dtype=np.float32)
            v[0 if ("near" in t or entity_type == "profile") else 1] = 1.0
            out.append(v)
        return np.stack(out)


def job_event(job_id: str, ts: pd.Timestamp, description: str, op: str = "upsert", seq: int = 0) -> dict:
    fields = {
        "title": "Engineer",
        "company": "Acme",
        "location": "Berlin",
        "remote": False,
        "seniority": "mid",
        "min_years": 1,
        "skills": ["python"],
        "description": description,
    }
    return {
        "seq": seq,
        "entity_type": "job",
        "entity_id": job_id,
        "op": op,
        "event_time": ts.isoformat().replace("+00:00", "Z"),
        "event_time_ms": int(ts.value // 1_000_000),
        "fields": fields if op == "upsert" else {},
    }


def test_worth_counts_a_fresh_job_for_nearline_only_and_a_week_old_one_for_daily_too():
    # 150 far jobs from the start; J1 posted Jan 9 10:00 (applied 2 h later); J2 posted Jan 6 (applied Jan 10)
    events = [job_event(f"F{i}", T0, f"far {i}", seq=i) for i in range(150)]
    events += [job_event("J1", T0 + 4 * DAY + pd.Timedelta(hours=10), "near one", seq=200)]
    events += [job_event("J2", T0 + DAY, "near two", seq=201)]
    stream = pd.DataFrame(events)
    members = pd.DataFrame({"member_id": ["M1"], "summary": ["someone"]})
    for col in ("headline", "title", "location", "years_experience", "skills"):
        members[col] = "x" if col != "years_experience" else 1.0
    jobs = pd.DataFrame({"job_id": ["J1", "J2"], "posted_at": [T0 + 4 * DAY + pd.Timedelta(hours=10), T0 + DAY]})
    interactions = pd.DataFrame(
        {
            "member_id": ["M1", "M1"],
            "job_id": ["J1", "J2"],
            "ts": [T0 + 4 * DAY + pd.Timedelta(hours=12), T0 + 5 * DAY],
            "action": ["apply", "apply"],
        }
    )
    market = type("M", (), {"jobs": jobs, "members": members, "interactions": interactions})()
    got = bench.worth(FakeEncoder(), market, stream, T0, top=100)
    assert got["applies"] == 2 and got["job_live_at_apply"] == 2
    # J1: only the nearline index has it 2 h after posting; J2 (posted 4 days before): nearline and daily;
    # the weekly rebuild of Thu Jan 8 has J2 (posted Jan 6) but not J1 (Jan 9)
    assert got["share"] == {"nearline": 1.0, "daily": 0.5, "weekly": 0.5}
