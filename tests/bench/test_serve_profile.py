"""bench/serve_profile.py: the profile's top tables add up stacks correctly, and process CPU time is read."""

from __future__ import annotations

import collections
import os

from support import bench_module

serve_profile = bench_module("serve_profile")


def test_top_counts_own_samples_at_the_leaf_and_inclusive_once_per_stack():
    stacks = collections.Counter({"main;loop;run": 6, "main;loop;parse": 3, "main;run;run": 1})
    own, incl = serve_profile.top(stacks, 10)
    assert own[0] == {"frame": "run", "share": 0.7, "samples": 7}
    assert {r["frame"]: r["samples"] for r in own} == {"run": 7, "parse": 3}
    inclusive = {r["frame"]: r["samples"] for r in incl}
    assert inclusive == {"main": 10, "loop": 9, "run": 7, "parse": 3}  # "run" twice in one stack counts once


def test_cpu_seconds_of_a_process_grow_with_work():
    before = serve_profile._proc_cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert serve_profile._proc_cpu_s(os.getpid()) > before >= 0
    assert serve_profile._self_cpu_s() > 0
