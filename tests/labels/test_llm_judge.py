"""LLMJudge against a real chat-completions server on loopback.

The server (``http.server`` in a thread, 127.0.0.1, a free port) speaks the
OpenAI chat-completions protocol. Each test member's headline carries a script,
e.g. ``"grade=2 script=429,ok"``: the server answers the n-th request for that
prompt with the n-th behaviour (the last one repeats), and a correct answer
grades the pair ``grade``.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from jude.config import LLMJudgeConfig
from jude.labels.judge_prompt import response_format
from jude.labels.judges import JudgeError
from jude.labels.llm_judge import LLMJudge, cache_key, parse_answer
from jude.labels.rubric import RUBRIC
from jude.labels.sampling import judge_pairs


class FakeLLM:
    """Records every request; answers by the script in the member's headline."""

    def __init__(self, delay_s: float = 0.0):
        self.delay_s = delay_s
        self.requests: list[dict] = []
        self.seen: Counter[str] = Counter()
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        with self.lock:
            attempt = self.seen[user]
            self.seen[user] += 1
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body})
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
        try:
            grade = int(re.search(r"grade=(\d+)", user).group(1))
            script = (re.search(r"script=([\w,-]+)", user) or re.match("(.*)", "ok")).group(1).split(",")
            self.respond(handler, script[min(attempt, len(script) - 1)], grade)
        finally:
            with self.lock:
                self.inflight -= 1

    def respond(self, h: BaseHTTPRequestHandler, behaviour: str, grade: int) -> None:
        time.sleep(self.delay_s)
        content = {
            "ok": json.dumps({"grade": grade, "rationale": f"graded {grade}\nby the fake"}),
            "fenced": "```json\n" + json.dumps({"grade": grade, "rationale": "fenced"}) + "\n```",
            "badjson": "Grade: 2, looks fine",
            "nograde": json.dumps({"rationale": "forgot the grade"}),
            "range": json.dumps({"grade": 7, "rationale": "too high"}),
            "string": json.dumps({"grade": "2", "rationale": "a string"}),
        }
        if behaviour == "slow":
            time.sleep(1.0)
            behaviour = "ok"
        if behaviour in content:
            payload = {
                "id": "x",
                "object": "chat.completion",
                "model": "fake",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content[behaviour]},
                    }
                ],
            }
            self.send(h, 200, payload)
        elif behaviour == "notchat":
            self.send(h, 200, {"hello": "world"})
        elif behaviour.startswith("429"):  # "429" or "429-ra7" (Retry-After: 7)
            ra = behaviour.partition("-ra")[2]
            self.send(h, 429, {"error": "rate limited"}, {"Retry-After": ra} if ra else {})
        else:
            self.send(h, int(behaviour), {"error": f"status {behaviour}"})

    @staticmethod
    def send(h, status, payload, headers=None):
        data = json.dumps(payload).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left


def _serving(fake: FakeLLM):
    """Serve ``fake`` on a free loopback port for the length of a fixture; yields it with its ``base_url``."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            if self.path != "/v1/chat/completions":
                FakeLLM.send(self, 404, {"error": f"no route {self.path}"})
                return
            fake.handle(self)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture()
def llm_server():
    yield from _serving(FakeLLM())


def member(i: int, grade: int, script: str = "ok") -> dict:
    return dict(
        member_id=f"m{i}",
        headline=f"grade={grade} script={script} #{i}",
        title="Data Engineer",
        location="Berlin, Germany",
        years_experience=5.0,
        skills=["Python", "SQL"],
        summary="Pipelines.",
        resume_text="CV",
    )


def job(i: int = 0) -> dict:
    return dict(
        job_id=f"j{i}",
        title="Data Engineer",
        company="Acme",
        location="Berlin, Germany",
        remote=False,
        seniority="mid",
        min_years=3,
        skills=["Python", "SQL"],
        description="Build pipelines.",
    )


def make_judge(server, tmp_path, sleeps=None, **cfg) -> LLMJudge:
    options = dict(
        base_url=server.base_url,
        model="fake-7b",
        cache_dir=str(tmp_path / "cache"),
        concurrency=2,
        max_retries=3,
        timeout_s=5.0,
        api_key_env="JUDE_TEST_LLM_KEY",
    )
    return LLMJudge(
        LLMJudgeConfig(**(options | cfg)),
        backoff_base_s=0.5,
        backoff_max_s=4.0,
        sleep=(sleeps.append if sleeps is not None else (lambda s: None)),
        show_progress=False,
    )


def test_request_follows_the_chat_completions_protocol(llm_server, tmp_path, monkeypatch):
    monkeypatch.setenv("JUDE_TEST_LLM_KEY", "sekret")
    judge = make_judge(llm_server, tmp_path, temperature=0.0)
    [j] = judge.grade_pairs([(member(0, 2), job())])
    assert j.grade == 2 and j.error is None
    assert j.rationale == "graded 2 by the fake"  # one line
    [req] = llm_server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sekret"
    body = req["body"]
    assert body["model"] == "fake-7b" and body["temperature"] == 0.0 and body["max_tokens"] == 96
    # The answer is constrained to the judge prompt's schema, in OpenAI's structured-outputs shape by default.
    assert body["response_format"] == response_format("json_schema")
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    assert body["messages"][0]["content"].startswith(RUBRIC)


def test_no_authorization_header_without_a_key(llm_server, tmp_path, monkeypatch):
    monkeypatch.delenv("JUDE_TEST_LLM_KEY", raising=False)
    make_judge(llm_server, tmp_path).grade_pairs([(member(0, 1), job())])
    assert "Authorization" not in llm_server.requests[0]["headers"]


def test_429_is_retried_honouring_retry_after(llm_server, tmp_path):
    sleeps: list[float] = []
    judge = make_judge(llm_server, tmp_path, sleeps)
    [j] = judge.grade_pairs([(member(0, 3, "429-ra7,ok"), job())])
    assert j.grade == 3
    assert sleeps == [7.0]
    assert judge.stats.requests == 2 and judge.stats.retries == 1 and judge.stats.failed == 0


def test_5xx_backs_off_exponentially_then_gives_up(llm_server, tmp_path):
    sleeps: list[float] = []
    judge = make_judge(llm_server, tmp_path, sleeps, max_retries=3)
    [j] = judge.grade_pairs([(member(0, 3, "500"), job())])
    assert j.grade is None and "HTTP 500" in j.error and "gave up after 4 attempts" in j.error
    assert judge.stats.requests == 4 and judge.stats.retries == 3 and judge.stats.failed == 1
    # base 0.5 s doubling, with up to half of each delay as jitter
    for attempt, s in enumerate(sleeps):
        delay = 0.5 * 2**attempt
        assert delay / 2 <= s <= delay
    assert len(sleeps) == 3


def test_503_then_success(llm_server, tmp_path):
    judge = make_judge(llm_server, tmp_path)
    [j] = judge.grade_pairs([(member(0, 1, "503,502,ok"), job())])
    assert j.grade == 1 and judge.stats.retries == 2


def test_other_4xx_fail_at_once(llm_server, tmp_path):
    judge = make_judge(llm_server, tmp_path)
    [j] = judge.grade_pairs([(member(0, 1, "401"), job())])
    assert j.grade is None and "HTTP 401" in j.error and "not retried" in j.error
    assert judge.stats.requests == 1 and judge.stats.failed == 1


def test_timeout_is_retried(llm_server, tmp_path):
    judge = make_judge(llm_server, tmp_path, timeout_s=0.3, max_retries=1)
    [ok, slow] = judge.grade_pairs([(member(0, 2, "slow,ok"), job()), (member(1, 2, "slow"), job())])
    assert ok.grade == 2
    assert slow.grade is None and "timed out after 0.3s" in slow.error
    assert judge.stats.retries == 2 and judge.stats.failed == 1


@pytest.mark.parametrize(
    "behaviour, why",
    [
        ("badjson", "not JSON"),
        ("nograde", "no 'grade'"),
        ("range", "must be 0-3, got 7"),
        ("string", "must be an integer 0-3, got '2'"),
        ("notchat", "not a chat completion"),
    ],
)
def test_malformed_answers_are_counted_never_labels(llm_server, tmp_path, behaviour, why):
    judge = make_judge(llm_server, tmp_path)
    [j] = judge.grade_pairs([(member(0, 2, behaviour), job())])
    assert j.grade is None and j.error.startswith("malformed answer") and why in j.error
    assert judge.stats.malformed == 1 and judge.stats.retries == 0 and judge.stats.graded == 0


def test_fenced_json_is_accepted(llm_server, tmp_path):
    [j] = make_judge(llm_server, tmp_path).grade_pairs([(member(0, 3, "fenced"), job())])
    assert j.grade == 3 and j.rationale == "fenced"


def test_cache_makes_a_rerun_free(llm_server, tmp_path):
    pairs = [(member(i, i % 4), job(i)) for i in range(5)] + [(member(9, 1, "badjson"), job())]
    first = make_judge(llm_server, tmp_path)
    one = first.grade_pairs(pairs)
    assert first.stats.requests == 6 and first.stats.cache_hits == 0
    second = make_judge(llm_server, tmp_path)
    two = second.grade_pairs(pairs)
    assert [j.grade for j in two] == [j.grade for j in one] == [0, 1, 2, 3, 0, None]
    # Only the malformed answer (never cached) is asked again.
    assert second.stats.cache_hits == 5 and second.stats.requests == 1
    files = sorted((tmp_path / "cache").rglob("*"))
    assert len([f for f in files if f.suffix == ".json"]) == 5
    assert not [f for f in files if f.suffix == ".tmp"]
    # A different model (or temperature) is a different prompt: no hit.
    other = make_judge(llm_server, tmp_path, model="other-model")
    other.grade_pairs(pairs[:1])
    assert other.stats.cache_hits == 0 and other.stats.requests == 1


def test_unreadable_cache_entry_is_a_miss(llm_server, tmp_path):
    pair = (member(0, 2), job())
    judge = make_judge(llm_server, tmp_path)
    judge.grade_pairs([pair])
    [entry] = (tmp_path / "cache").rglob("*.json")
    entry.write_text("{half a fi")
    again = make_judge(llm_server, tmp_path)
    assert again.grade_pairs([pair])[0].grade == 2
    assert again.stats.cache_hits == 0 and again.stats.requests == 1
    assert json.loads(entry.read_text())["grade"] == 2  # rewritten whole


def test_concurrency_is_bounded_and_order_kept(llm_server, tmp_path):
    llm_server.delay_s = 0.15
    grades = [3, 0, 2, 1, 1, 3, 0, 2]
    judge = make_judge(llm_server, tmp_path, concurrency=3)
    out = judge.grade_pairs([(member(i, g), job(i)) for i, g in enumerate(grades)])
    assert [j.grade for j in out] == grades
    assert 2 <= llm_server.max_inflight <= 3


def test_judge_pairs_drops_failures_and_reports_them(llm_server, tmp_path):
    members = pd.DataFrame([member(0, 3), member(1, 1), member(2, 2, "range")])
    jobs = pd.DataFrame([job(0)])
    pairs = pd.DataFrame(
        {"member_id": ["m0", "m1", "m2"], "job_id": ["j0"] * 3, "origin": ["retrieved", "random", "interacted"]}
    )
    judge = make_judge(llm_server, tmp_path)
    labels, stats = judge_pairs(judge, pairs, jobs, members, relevant_grade=2)
    assert labels[["member_id", "grade", "label"]].values.tolist() == [["m0", 3, 1], ["m1", 1, 0]]
    assert set(labels["source"]) == {"relevance"}
    assert stats["failed"] == 1 and "must be 0-3" in stats["errors"][0]
    assert stats["judge_stats"]["malformed"] == 1
    assert stats["grades"] == {"0": 0, "1": 1, "2": 0, "3": 1}
    assert stats["origins"] == {"retrieved": 1, "random": 1, "interacted": 1}


def test_judge_pairs_raises_when_everything_failed(tmp_path):
    judge = LLMJudge(
        LLMJudgeConfig(base_url="http://127.0.0.1:9/v1", cache_dir=str(tmp_path), max_retries=0, timeout_s=2.0),
        show_progress=False,
    )
    pairs = pd.DataFrame({"member_id": ["m0"], "job_id": ["j0"]})
    with pytest.raises(JudgeError, match="failed on all 1 pairs"):
        judge_pairs(judge, pairs, pd.DataFrame([job(0)]), pd.DataFrame([member(0, 1)]), relevant_grade=2)
    assert judge.stats.failed == 1


def test_parse_answer_and_cache_key_units():
    assert parse_answer('{"grade": 2.0, "rationale": "a\\n b"}') == (2, "a b")
    for bad in ['{"grade": true}', '{"grade": 2.5}', "[2]", "", None]:
        with pytest.raises(ValueError):
            parse_answer(bad)
    msgs = [{"role": "user", "content": "x"}]
    assert cache_key("m", msgs, 0.0) == cache_key("m", msgs, 0.0)
    assert cache_key("m", msgs, 0.0) != cache_key("m", msgs, 0.7)


class QuestionsLLM(FakeLLM):
    """Answers the three-question prompt: the member's headline holds ``answers=<role>,<location>,<qualification>``;
    the question is told apart by its schema's allowed answers."""

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = json.loads(handler.rfile.read(int(handler.headers["Content-Length"])))
        user = body["messages"][-1]["content"]
        with self.lock:
            self.requests.append({"path": handler.path, "headers": dict(handler.headers), "body": body})
        allowed = body["response_format"]["schema"]["properties"]["answer"]["enum"]
        fact = {"same": 0, "yes": 1}[allowed[0]] if "almost" not in allowed else 2
        answer = re.search(r"answers=([\w,]+)", user).group(1).split(",")[fact]
        message = {"role": "assistant", "content": json.dumps({"answer": answer})}
        self.send(handler, 200, {"id": "x", "object": "chat.completion", "choices": [{"index": 0, "message": message}]})


@pytest.fixture()
def questions_server():
    yield from _serving(QuestionsLLM())


def _asked(i: int, answers: str) -> dict:
    return member(i, 0) | {"headline": f"answers={answers} #{i}"}


def test_the_questions_prompt_asks_three_questions_and_grades_by_the_rubric_s_combination(questions_server, tmp_path):
    judge = make_judge(questions_server, tmp_path, prompt="questions", response_format="json_object_schema")
    cases = {"same,yes,yes": 3, "same,yes,almost": 2, "same,no,yes": 1, "related,yes,yes": 1, "different,yes,yes": 0}
    pairs = [(_asked(i, answers), job(i)) for i, answers in enumerate(cases)]
    out = judge.grade_pairs(pairs)
    assert [j.grade for j in out] == list(cases.values())
    assert out[1].rationale == "role: same; location: fits; qualification: slightly under-qualified"
    assert len(questions_server.requests) == 3 * len(cases) and judge.stats.malformed == 0
    first = [r["body"] for r in questions_server.requests if "#0" in r["body"]["messages"][-1]["content"]]
    users = [b["messages"][-1]["content"] for b in first]
    texts = users[0][: users[0].index("Is the job")]
    assert all(u.startswith(texts) for u in users)  # the texts first, shared by the three questions (prefix cache)
    assert "Member profile:" in texts and "Job posting:" in texts and "Berlin" in texts
    # a rerun asks nothing; the strict prompt on the same cache is another key, so it asks again
    again = make_judge(questions_server, tmp_path, prompt="questions", response_format="json_object_schema")
    assert [j.grade for j in again.grade_pairs(pairs)] == list(cases.values())
    assert again.stats.cache_hits == len(cases) and len(questions_server.requests) == 3 * len(cases)
    assert judge.key(judge._prompt(*pairs[0])) != make_judge(questions_server, tmp_path).key(
        make_judge(questions_server, tmp_path)._prompt(*pairs[0])
    )


def test_an_answer_outside_the_question_s_choices_is_malformed_and_not_cached(questions_server, tmp_path):
    judge = make_judge(questions_server, tmp_path, prompt="questions", response_format="json_object_schema")
    [j] = judge.grade_pairs([(_asked(0, "same,maybe,yes"), job())])
    assert j.grade is None and "location question" in j.error and "maybe" in j.error
    assert judge.stats.malformed == 1 and len(judge.cache) == 0
