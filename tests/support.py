"""Helpers the tests share (plain functions and constants; fixtures live in conftest.py)."""

from __future__ import annotations

import importlib.util
import socket
import sys
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parents[1] / "bench"

# The one small synthetic marketplace of the test suite (the `small_market` fixture): big enough for
# label budgets and splits, small enough to generate in well under a second.
SMALL_MARKET_SEED = 1
SMALL_MARKET_SIZES = dict(n_jobs=120, n_members=90, days=30, impressions_per_member=20)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bench_module(name: str) -> ModuleType:
    """``bench/<name>.py`` imported as module ``name`` (bench/ is scripts, not a package; its siblings such as
    ``results_io`` import as they do when the script runs)."""
    if name in sys.modules:
        return sys.modules[name]
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # before exec: dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module
