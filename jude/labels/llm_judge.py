"""The LLM judge: any OpenAI-compatible chat-completions endpoint (vLLM, Ollama, OpenAI, llama.cpp) grades pairs.

The endpoint is shown the prompt of :mod:`jude.labels.judge_prompt` (the rubric, a strict procedure, both
entity texts) and answers one JSON object constrained by its schema: the three facts (role, location,
qualification) and ``"grade": 0-3``. Requests are retried with backoff, valid answers are cached on disk
(written atomically through :func:`jude.fsutils.atomic_write_text`, keyed by model, prompt version and the
pair's texts), and malformed answers are counted, never turned into labels.

With ``labels.llm.server`` set, the judge starts a local llama.cpp server (:mod:`jude.labels.llm_server`)
around each :meth:`LLMJudge.grade_pairs` call that has anything to ask; otherwise it talks to ``base_url``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from tqdm.auto import tqdm

from jude.config import LLMJudgeConfig
from jude.fsutils import atomic_write_text
from jude.labels.judge_interface import GRADES, Judge, JudgeError, Judgement, Pair
from jude.labels.judge_prompt import (
    PROMPT_VERSION,
    QUESTIONS_VERSION,
    build_messages,
    build_question_messages,
    fact_from_answer,
    facts_rationale,
    grade_from_facts,
    question_schema,
    response_format,
)

__all__ = ["JudgeCache", "LLMJudge", "build_messages", "cache_key", "parse_answer"]

log = logging.getLogger(__name__)


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace to one line and cap its length."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _Malformed(ValueError):
    """The endpoint answered, but not with a valid grade."""


def cache_key(
    model: str,
    messages: list[dict[str, str]],
    temperature: float,
    prompt_version: str = PROMPT_VERSION,
    answer_format: Any = None,
) -> str:
    """sha256 of everything that determines the answer: the judge model, the prompt version, the messages (the
    prompt and the pair's two texts), the temperature and the answer's constraint (``response_format``)."""
    payload = json.dumps(
        {
            "model": model,
            "prompt_version": prompt_version,
            "messages": messages,
            "temperature": temperature,
            "response_format": answer_format,
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_answer(content: Any) -> tuple[int, str]:
    """``'{"role": "same", ..., "grade": 2}'`` -> ``(2, "role: same; location: ...")``; raises :class:`_Malformed`.

    The rationale is the answer's ``rationale`` when it has one, else its three facts
    (:func:`jude.labels.judge_prompt.facts_rationale`), else empty. Accepts the object
    wrapped in a Markdown code fence (some models add one even in JSON mode). The grade
    must be an integer 0-3 (``2.0`` is accepted, ``"2"``, ``true`` and ``2.5`` are not).
    """
    if not isinstance(content, str) or not content.strip():
        raise _Malformed(f"empty or non-text answer: {content!r}")
    text = content.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    if fence:
        text = fence.group(1)
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise _Malformed(f"answer is not JSON ({e.msg}): {_one_line(content, 120)!r}") from None
    if not isinstance(obj, dict):
        raise _Malformed(f"answer is not a JSON object: {_one_line(content, 120)!r}")
    if "grade" not in obj:
        raise _Malformed(f"answer has no 'grade': {_one_line(content, 120)!r}")
    grade = obj["grade"]
    if isinstance(grade, bool) or not isinstance(grade, (int, float)):
        raise _Malformed(f"'grade' must be an integer 0-3, got {grade!r} ({type(grade).__name__})")
    if isinstance(grade, float):
        if not grade.is_integer():
            raise _Malformed(f"'grade' must be an integer 0-3, got {grade!r}")
        grade = int(grade)
    if grade not in GRADES:
        raise _Malformed(f"'grade' must be 0-3, got {grade}")
    rationale = obj.get("rationale", facts_rationale(obj) or "")
    if not isinstance(rationale, str):
        rationale = json.dumps(rationale)
    return grade, _one_line(rationale)


def _answer_field(content: Any) -> Any:
    """``'{"answer": "yes"}'`` -> ``"yes"`` (a Markdown code fence allowed); None when it is not that shape."""
    if not isinstance(content, str):
        return None
    text = content.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.DOTALL)
    try:
        obj = json.loads(fence.group(1) if fence else text)
    except json.JSONDecodeError:
        return None
    return obj.get("answer") if isinstance(obj, dict) else None


def _retry_after_s(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), if any."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class JudgeCache:
    """One JSON file per prompt hash under ``root`` (sharded by the first two hex digits).

    Entries are written with :func:`jude.fsutils.atomic_write_text` (a temporary file
    in the same folder, renamed into place), so a crash never leaves a half-written
    entry; an unreadable entry is a miss.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        p = self.path(key)
        try:
            entry = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as e:
            log.warning("judge cache: ignoring unreadable entry %s (%s)", p, e)
            return None
        if not isinstance(entry, dict) or entry.get("grade") not in GRADES:
            log.warning("judge cache: ignoring invalid entry %s", p)
            return None
        return entry

    def put(self, key: str, entry: dict[str, Any]) -> None:
        atomic_write_text(self.path(key), json.dumps(entry, ensure_ascii=False))

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0


class LLMJudge(Judge):
    """Grades pairs with an LLM behind an OpenAI-compatible chat-completions API.

    ``POST {base_url}/chat/completions`` with ``model``, ``messages``
    (:func:`jude.labels.judge_prompt.build_messages`: rubric and procedure as system,
    the two entity texts as user), ``temperature``, ``max_tokens`` and a
    ``response_format`` that constrains the answer to
    :data:`jude.labels.judge_prompt.ANSWER_SCHEMA` (``cfg.response_format`` picks the
    request shape the server understands); the answer must hold ``"grade": 0-3``.

    - ``cfg.concurrency`` requests in flight (a thread pool over one ``httpx.Client``).
    - 429, 5xx, timeouts and connection errors are retried up to ``cfg.max_retries``
      times with exponential backoff and jitter; a ``Retry-After`` header is honoured
      (capped at ``max_retry_after_s``). Other 4xx fail at once (a bad model name
      or key does not get better by asking again).
    - Valid answers are cached on disk under ``cfg.cache_dir``, keyed by the sha256
      of (model, prompt version, messages with the pair's texts, temperature, answer
      format): a re-run sends no request. Malformed answers are not cached, so a
      re-run asks again.
    - ``cfg.server`` set: a local llama.cpp server (:class:`jude.labels.llm_server.LLMServer`)
      is started for each call that has a pair not in the cache, and stopped after it.
    - A malformed answer counts in ``stats.malformed`` and yields
      ``Judgement(grade=None, error=...)``.

    ``backoff_base_s``, ``backoff_max_s`` and ``sleep`` exist for tests and tuning.
    """

    name = "llm"

    def __init__(
        self,
        cfg: LLMJudgeConfig,
        *,
        backoff_base_s: float = 1.0,
        backoff_max_s: float = 30.0,
        max_retry_after_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        show_progress: bool = True,
    ):
        super().__init__()
        if backoff_base_s < 0 or backoff_max_s < 0:
            raise ValueError(f"backoff must be >= 0, got base={backoff_base_s}, max={backoff_max_s}")
        self.cfg = cfg
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"
        self.cache = JudgeCache(cfg.cache_dir)
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.max_retry_after_s = max_retry_after_s
        self.sleep = sleep
        self.show_progress = show_progress
        self._lock = threading.Lock()
        kind = cfg.response_format
        if kind == "auto":
            kind = "json_object_schema" if cfg.server is not None else "json_schema"
        self.response_format = response_format(kind)
        self._question_formats = {
            f: response_format(kind, question_schema(f)) for f in ("role", "location", "qualification")
        }
        self.prompt_version = QUESTIONS_VERSION if cfg.prompt == "questions" else PROMPT_VERSION
        self.server: Any = None  # the running jude.labels.llm_server.LLMServer, while grade_pairs runs one

    def key(self, messages: Any) -> str:
        """The cache key of one pair's prompt (the strict prompt's messages, or the three questions' list of
        ``(fact, messages)``) under this judge's model, prompt version, temperature and answer format."""
        fmt = self._question_formats if self.cfg.prompt == "questions" else self.response_format
        return cache_key(self.cfg.model, messages, self.cfg.temperature, self.prompt_version, fmt)

    def _prompt(self, member: dict, job: dict) -> Any:
        if self.cfg.prompt == "questions":
            return build_question_messages(member, job)
        return build_messages(member, job)

    @contextmanager
    def _endpoint(self, prompts: list[Any]) -> Iterator[None]:
        """``cfg.server`` set and some prompt not cached: run a local server for the block, pointing at it."""
        if self.cfg.server is None or all(self.cache.get(self.key(m)) is not None for m in prompts):
            yield
            return
        from jude.labels.llm_server import LLMServer

        with LLMServer.from_config(self.cfg.server, model_name=self.cfg.model) as server:
            self.server, self.url = server, server.base_url + "/chat/completions"
            try:
                yield
            finally:
                self.server, self.url = None, self.cfg.base_url.rstrip("/") + "/chat/completions"

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        token = os.environ.get(self.cfg.api_key_env)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _backoff(self, attempt: int, response: httpx.Response | None) -> float:
        """Seconds to wait before retry number ``attempt + 1``."""
        if response is not None:
            after = _retry_after_s(response)
            if after is not None:
                return min(after, self.max_retry_after_s)
        delay = min(self.backoff_max_s, self.backoff_base_s * (2**attempt))
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"

    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        pairs = list(pairs)
        self._count(pairs=len(pairs))
        results: list[Judgement | None] = [None] * len(pairs)
        timeout = httpx.Timeout(self.cfg.timeout_s)
        limits = httpx.Limits(max_connections=self.cfg.concurrency)
        # Render every prompt first: a bad record fails here, before any request is sent (or server started).
        prompts = [self._prompt(m, j) for m, j in pairs]
        with (
            self._endpoint(prompts),
            httpx.Client(timeout=timeout, limits=limits, headers=self._headers()) as client,
            ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="llm-judge") as pool,
            tqdm(
                total=len(pairs), desc=f"LLM judge ({self.cfg.model})", unit="pair", disable=not self.show_progress
            ) as bar,
        ):
            futures = {pool.submit(self._grade_one, client, msgs): i for i, msgs in enumerate(prompts)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
        out = [r for r in results if r is not None]
        assert len(out) == len(pairs)
        self._count(graded=sum(r.ok for r in out))
        return out

    def _grade_one(self, client: httpx.Client, messages: Any) -> Judgement:
        key = self.key(messages)
        cached = self.cache.get(key)
        if cached is not None:
            self._count(cache_hits=1)
            return Judgement(grade=int(cached["grade"]), rationale=str(cached.get("rationale", "")))
        if self.cfg.prompt == "questions":
            return self._grade_questions(client, key, messages)

        try:
            content = self._post(client, self._body(messages, self.response_format))
        except JudgeError as e:
            self._count(failed=1)
            return Judgement(grade=None, error=str(e))
        try:
            grade, rationale = parse_answer(content)
        except _Malformed as e:
            self._count(malformed=1)
            return Judgement(grade=None, error=f"malformed answer: {e}")
        return self._keep(key, grade, rationale, content)

    def _body(self, messages: list[dict[str, str]], answer_format: dict[str, Any]) -> dict[str, Any]:
        """One chat-completions request: this judge's model, temperature and answer cap, ``answer_format``."""
        return {
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "max_tokens": self.cfg.max_tokens,
            "response_format": answer_format,
        }

    def _keep(self, key: str, grade: int, rationale: str, content: Any) -> Judgement:
        """Cache a valid answer under ``key`` and return its judgement."""
        self.cache.put(
            key,
            {
                "grade": grade,
                "rationale": rationale,
                "model": self.cfg.model,
                "prompt_version": self.prompt_version,
                "temperature": self.cfg.temperature,
                "content": content,
            },
        )
        return Judgement(grade=grade, rationale=rationale)

    def _grade_questions(self, client: httpx.Client, key: str, questions: list[tuple[str, Any]]) -> Judgement:
        """The three questions of one pair, in order (one request each); the grade from their answers by the
        rubric's combination. Any answer that is not one of its question's allowed answers makes the pair
        malformed (nothing cached, no label)."""
        facts: dict[str, str] = {}
        contents = []
        for fact, messages in questions:
            try:
                content = self._post(client, self._body(messages, self._question_formats[fact]))
            except JudgeError as e:
                self._count(failed=1)
                return Judgement(grade=None, error=f"{fact}: {e}")
            contents.append(content)
            value = fact_from_answer(fact, _answer_field(content))
            if value is None:
                self._count(malformed=1)
                return Judgement(
                    grade=None, error=f"malformed answer to the {fact} question: {_one_line(content, 120)!r}"
                )
            facts[fact] = value
        return self._keep(key, grade_from_facts(facts), facts_rationale(facts) or "", contents)

    def _post(self, client: httpx.Client, body: dict[str, Any]) -> Any:
        """Send one request, retrying what can get better; return the message content."""
        last = ""
        for attempt in range(self.cfg.max_retries + 1):
            if attempt:
                self._count(retries=1)
            self._count(requests=1)
            response = None
            try:
                response = client.post(self.url, json=body)
            except httpx.TimeoutException:
                last = f"timed out after {self.cfg.timeout_s}s"
            except httpx.TransportError as e:
                last = f"{type(e).__name__}: {e}"
                if self.server is not None:
                    self.server.check_alive()  # a dead local server: its exit code and log, not N retries
            else:
                if response.status_code == 200:
                    try:
                        return response.json()["choices"][0]["message"]["content"]
                    except (ValueError, KeyError, IndexError, TypeError):
                        # A 200 that is not a chat completion: count as malformed, do not retry.
                        return {"not a chat completion": _one_line(response.text, 120)}
                last = f"HTTP {response.status_code}: {_one_line(response.text, 200)}"
                if response.status_code not in RETRY_STATUS:
                    raise JudgeError(f"POST {self.url}: {last} (not retried)")
            if attempt < self.cfg.max_retries:
                self.sleep(self._backoff(attempt, response))
        raise JudgeError(f"POST {self.url}: {last} (gave up after {self.cfg.max_retries + 1} attempts)")
