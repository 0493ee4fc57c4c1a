"""The local judge server (jude.labels.llm_server): its errors, and the real llama.cpp server on SmolLM2-135M.

The unit tests start stand-in processes (``command=``) to make the server fail in each way it can. The
``services`` test starts ``python -m llama_cpp.server`` on the real SmolLM2-135M-Instruct GGUF (installed by
``make setup``) and judges a handful of generated pairs through the unchanged client.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from jude.config import LLMJudgeConfig, SyntheticConfig
from jude.config.labels import LLMServerConfig
from jude.data.synthetic import generate_marketplace
from jude.labels.judge_prompt import parse_facts
from jude.labels.llm_judge import LLMJudge
from jude.labels.llm_server import LLMServer, LLMServerError, port_is_free

ROOT = Path(__file__).resolve().parents[2]
SMOLLM2 = ROOT / ".jude" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_missing_model_file_is_named_with_make_llm(tmp_path):
    server = LLMServer(tmp_path / "nope.gguf")
    with pytest.raises(LLMServerError, match=r"nope\.gguf does not exist: run `make llm`"):
        server.start()
    assert server.proc is None


def test_missing_model_through_the_judge_config(tmp_path):
    cfg = LLMJudgeConfig(
        model="smol", cache_dir=str(tmp_path / "cache"), server=LLMServerConfig(model_path=str(tmp_path / "x.gguf"))
    )
    judge = LLMJudge(cfg, show_progress=False)
    assert judge.response_format["type"] == "json_object" and "schema" in judge.response_format
    member = dict(headline="h", title="Data Engineer", location="Berlin", years_experience=3, skills=[], summary="")
    job = dict(
        title="Data Engineer", company="A", location="Berlin", remote=False, seniority="mid", min_years=2,
        skills=["SQL"], description="d",
    )  # fmt: skip
    with pytest.raises(LLMServerError, match=r"x\.gguf does not exist"):
        judge.grade_pairs([(member, job)])


def test_port_taken_is_named(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        server = LLMServer(tmp_path / "m.gguf", port=port, command=[sys.executable, "-c", "pass"])
        with pytest.raises(LLMServerError, match=rf"port {port} on 127.0.0.1 is taken"):
            server.start()
        assert server.proc is None


def test_server_that_dies_reports_exit_code_and_log_tail(tmp_path):
    code = "import sys; print('loading model'); print('error: unknown model architecture: foo'); sys.exit(3)"
    server = LLMServer(tmp_path / "m.gguf", command=[sys.executable, "-c", code], log_path=tmp_path / "s.log")
    with pytest.raises(LLMServerError, match=r"exited with code 3") as err:
        server.start()
    assert "unknown model architecture: foo" in str(err.value)
    assert server.proc is None


def test_server_never_ready_times_out_and_is_stopped(tmp_path):
    server = LLMServer(
        tmp_path / "m.gguf", command=[sys.executable, "-c", "import time; time.sleep(60)"], startup_timeout_s=1.0
    )
    t0 = time.monotonic()
    with pytest.raises(LLMServerError, match=r"did not answer GET .*/v1/models within 1s"):
        server.start()
    assert time.monotonic() - t0 < 15
    assert server.proc is None  # stopped, not left behind


def test_ready_when_models_answers_then_stopped(tmp_path):
    (tmp_path / "www" / "v1").mkdir(parents=True)
    (tmp_path / "www" / "v1" / "models").write_text('{"data": []}')
    cmd = [sys.executable, "-m", "http.server", "{port}", "--bind", "{host}", "--directory", str(tmp_path / "www")]
    with LLMServer(tmp_path / "m.gguf", command=cmd) as server:
        assert server.alive() and server.port > 0
        assert httpx.get(server.base_url + "/models").status_code == 200
        proc = server.proc
        assert server.peak_rss_bytes() > 0
    assert proc.poll() is not None and server.proc is None
    assert port_is_free("127.0.0.1", server.port)


def _pairs(n: int):
    mp = generate_marketplace(SyntheticConfig(n_jobs=60, n_members=20, impressions_per_member=5, seed=3))
    members, jobs = mp.members.to_dict("records"), mp.jobs.to_dict("records")
    return [(members[i % len(members)], jobs[(7 * i) % len(jobs)]) for i in range(n)]


@pytest.mark.services
def test_real_llama_cpp_server_judges_pairs_through_the_client(tmp_path):
    """`make setup` installs llama-cpp-python and the SmolLM2-135M GGUF: this runs, it does not skip."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        pytest.fail("llama-cpp-python is not installed: run `make setup` (or pip install -e '.[llm]')")
    if not SMOLLM2.is_file():
        pytest.fail(f"{SMOLLM2} is missing: run `make setup` (or `make llm`)")
    cfg = LLMJudgeConfig(
        model="smollm2-135m",
        cache_dir=str(tmp_path / "cache"),
        concurrency=1,  # llama-cpp-python's server answers one request at a time
        timeout_s=120.0,
        # One thread: on a busy (shared CI) machine two spinning llama.cpp threads wait on each other.
        server=LLMServerConfig(model_path=str(SMOLLM2), n_ctx=4096, n_threads=1),
    )
    pairs = _pairs(4)
    judge = LLMJudge(cfg, show_progress=False)
    out = judge.grade_pairs(pairs)
    assert len(out) == 4
    # The schema is enforced as a grammar: every answer parses, and holds the three facts.
    assert judge.stats.malformed == 0 and judge.stats.failed == 0, [j.error for j in out]
    assert all(j.grade in (0, 1, 2, 3) for j in out)
    assert all(parse_facts(j.rationale) is not None for j in out), [j.rationale for j in out]
    assert judge.server is None  # stopped after the call

    again = LLMJudge(cfg, show_progress=False)
    assert [j.grade for j in again.grade_pairs(pairs)] == [j.grade for j in out]
    assert again.stats.cache_hits == 4 and again.stats.requests == 0  # no server started, nothing asked
