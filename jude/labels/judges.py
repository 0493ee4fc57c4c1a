"""Relevance judges: grade a (member, job) pair 0-3 by one strict rubric.

JUDE's relevance labels come from an LLM judge that checks role, location and
qualifications strictly; they are scarce and high quality (engagement labels are
the plentiful, noisy kind, see :mod:`jude.labels.engagement`). Two judges apply
the same :data:`RUBRIC`:

- :class:`RubricJudge` (the default): the rubric computed from the structured
  fields. Deterministic, free, and what the embedded (no-GPU, no-API) setup uses.
- :class:`LLMJudge`: any OpenAI-compatible chat-completions endpoint (vLLM,
  Ollama, OpenAI) is shown the rubric and both entity texts and answers
  ``{"grade": 0-3, "rationale": "..."}``. Retries with backoff, an on-disk cache,
  and malformed answers counted, never turned into labels.

A judge returns one :class:`Judgement` per pair, in the order of the pairs; a
judgement with ``grade=None`` is a failure and carries ``error``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
from tqdm.auto import tqdm

from jude.config import LabelConfig, LLMJudgeConfig
from jude.data import vocab
from jude.modeling.templates import render

log = logging.getLogger(__name__)

GRADES = (0, 1, 2, 3)

# The qualification thresholds of the rubric. They appear in RUBRIC's text and in
# RubricJudge's code from these constants, so the LLM and the rule agree.
QUALIFIED_SKILL_SHARE = 0.5  # fully qualified: has at least half the job's required skills
SLIGHT_SKILL_SHARE = 0.25  # slightly under-qualified: at least a quarter of them ...
SLIGHT_YEARS_GAP = 2  # ... and at most this many years short of the job's minimum

def _families_text() -> str:
    """The role families and their adjacent (related) families, one line each."""
    lines = []
    for fam in vocab.ALL_ROLE_FAMILIES.values():
        related = [vocab.ALL_ROLE_FAMILIES[r].titles[0] for r in sorted(
            {r for r in fam.related} | {o.name for o in vocab.ALL_ROLE_FAMILIES.values() if fam.name in o.related})]
        line = f"   - {fam.titles[0]}: also {', '.join(fam.titles[1:])}"
        if related:
            line += f"; adjacent: {', '.join(related)}"
        lines.append(line)
    return "\n".join(lines)


RUBRIC = f"""\
You judge whether a job posting is relevant to a member of a job marketplace.
Grade the pair 0, 1, 2 or 3, strictly, from three facts and nothing else.

1. Role. Compare the member's current title with the job title.
   - same role: both titles are in the same role family. Seniority words
     ("Senior", "Lead", "Junior", "II") do not change the family.
   - adjacent role: the two families are listed as adjacent below.
   - different role: anything else, even when the titles share words or skills
     (Data Engineer vs Data Analyst, Software Engineer vs Sales Engineer, Product
     Manager vs Project Manager are different roles).
   Role families (title: other titles of the same family; adjacent families):
{_families_text()}
   A title outside these families is the same role only as the same job title.
2. Location. The location fits when the job is remote, or when the job's city is
   the member's city. Otherwise it does not fit.
3. Qualification. Years: the member's years of experience against the job's
   minimum years. Skills: the share of the job's listed skills that the member
   also lists.
   - fully qualified: years >= the minimum, and skills share >= {QUALIFIED_SKILL_SHARE:.0%}.
   - slightly under-qualified: not fully qualified, but at most {SLIGHT_YEARS_GAP} years short
     of the minimum and skills share >= {SLIGHT_SKILL_SHARE:.0%}.
   - clearly under-qualified: anything less.

Grades:
- 3: same role, location fits, fully qualified.
- 2: same role, location fits, slightly under-qualified.
- 1: same role, but the location does not fit or the member is clearly
     under-qualified (or both); or an adjacent role where the location fits and
     the member is fully qualified.
- 0: a different role; or an adjacent role that does not fit otherwise.

Over-qualification never lowers a grade. Do not reward a good company, a nice
description or anything else the rubric does not name."""

ANSWER_FORMAT = (
    'Answer with one JSON object and nothing else: {"grade": <0, 1, 2 or 3>, '
    '"rationale": "<one line naming the deciding facts>"}.'
)


@dataclass(frozen=True)
class Judgement:
    """A judge's verdict on one (member, job) pair.

    ``grade`` is 0-3, or None when the judge failed (then ``error`` says why and
    the pair must not become a label).
    """

    grade: int | None
    rationale: str = ""
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.grade is not None


@dataclass
class JudgeStats:
    """Counters a judge keeps across calls (logged as step metadata).

    ``requests`` counts HTTP requests sent (retries included), ``retries`` the
    re-sends, ``malformed`` answers that were not a valid grade, ``failed`` pairs
    that got no answer at all (retries exhausted, or a non-retryable error).
    """

    pairs: int = 0
    graded: int = 0
    requests: int = 0
    cache_hits: int = 0
    retries: int = 0
    malformed: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class JudgeError(RuntimeError):
    """The judge could not grade anything (e.g. the endpoint is unreachable)."""


Pair = tuple[Mapping[str, Any], Mapping[str, Any]]  # (member record, job record)


class Judge(ABC):
    """Grades (member, job) pairs by :data:`RUBRIC`.

    Records are dicts (or pandas rows) with the columns of
    :data:`jude.data.schema.MEMBERS` and :data:`jude.data.schema.JOBS`.
    """

    name: str = "judge"

    def __init__(self) -> None:
        self.stats = JudgeStats()

    @abstractmethod
    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        """One judgement per pair, in the order given."""


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace to one line and cap its length."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _skills(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [p.strip() for p in value.replace("|", ";").split(";") if p.strip()]
    return [str(s) for s in value]


def _years(value: float) -> str:
    v = float(value)
    return str(int(v)) if v == int(v) else f"{v:.1f}"


# --------------------------------------------------------------------------- #
# Rubric judge: the rubric computed from the structured fields
# --------------------------------------------------------------------------- #


def _family_title(family: str | None, title: str) -> str:
    """The canonical title of a family ('Data Engineer'), or the raw title if unknown."""
    if family is None:
        return str(title)
    return vocab.ALL_ROLE_FAMILIES[family].titles[0]


def _field(record: Mapping[str, Any], name: str, kind: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise ValueError(f"{kind} record is missing field '{name}' (has {sorted(record.keys())})") from None


def rubric_grade(member: Mapping[str, Any], job: Mapping[str, Any]) -> Judgement:
    """Apply :data:`RUBRIC` to one (member, job) pair from its structured fields.

    Role: ``vocab.family_fit`` of the member's and the job's title families (1 same,
    0.5 adjacent, 0 different; a title outside the vocabulary is the same role only
    as the same title). Location: ``vocab.location_fit``. Qualification: years
    against ``min_years`` and ``vocab.skill_overlap`` of the job's skills.
    """
    m_title, j_title = str(_field(member, "title", "member")), str(_field(job, "title", "job"))
    m_fam, j_fam = vocab.role_family_of(m_title), vocab.role_family_of(j_title)
    if m_fam is None and j_fam is None:
        fit = 1.0 if " ".join(m_title.lower().split()) == " ".join(j_title.lower().split()) else 0.0
    else:
        fit = vocab.family_fit(m_fam, j_fam)
    role = {1.0: "same", 0.5: "adjacent", 0.0: "different"}[fit]
    if role == "same":
        role_text = f"same role ({_family_title(j_fam, j_title)})"
    else:
        role_text = f"{role} role ({_family_title(m_fam, m_title)} vs {_family_title(j_fam, j_title)})"

    remote = bool(_field(job, "remote", "job"))
    m_loc, j_loc = str(_field(member, "location", "member")), str(_field(job, "location", "job"))
    loc_ok = vocab.location_fit(m_loc, j_loc, remote)
    if remote:
        loc_text = "location fits (remote)"
    elif loc_ok:
        loc_text = f"location fits ({j_loc})"
    else:
        loc_text = f"location does not fit ({m_loc} vs {j_loc}, on-site)"

    years = float(_field(member, "years_experience", "member"))
    min_years = float(_field(job, "min_years", "job"))
    share = vocab.skill_overlap(_skills(_field(job, "skills", "job")), _skills(_field(member, "skills", "member")))
    years_text = f"{_years(years)} {'>=' if years >= min_years else '<'} {_years(min_years)} years"
    if years >= min_years and share >= QUALIFIED_SKILL_SHARE:
        qual = "full"
        qual_text = f"qualified: {years_text}, skills {share:.0%}"
    elif years >= min_years - SLIGHT_YEARS_GAP and share >= SLIGHT_SKILL_SHARE:
        qual = "slight"
        qual_text = f"slightly under-qualified: {years_text}, skills {share:.0%}"
    else:
        qual = "clear"
        qual_text = f"clearly under-qualified: {years_text}, skills {share:.0%}"

    if role == "same":
        if loc_ok and qual == "full":
            grade = 3
        elif loc_ok and qual == "slight":
            grade = 2
        else:
            grade = 1
    elif role == "adjacent":
        grade = 1 if (loc_ok and qual == "full") else 0
    else:
        grade = 0
    return Judgement(grade=grade, rationale=f"{role_text}, {loc_text}, {qual_text}")


class RubricJudge(Judge):
    """The default judge: :func:`rubric_grade` on every pair. Deterministic and free."""

    name = "rubric"

    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        pairs = list(pairs)
        out = [rubric_grade(m, j) for m, j in tqdm(pairs, desc="rubric judge", unit="pair",
                                                   disable=len(pairs) < 1000)]
        self.stats.pairs += len(pairs)
        self.stats.graded += len(out)
        return out


# --------------------------------------------------------------------------- #
# LLM judge: an OpenAI-compatible chat-completions endpoint
# --------------------------------------------------------------------------- #

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class _Malformed(ValueError):
    """The endpoint answered, but not with a valid grade."""


def build_messages(member: Mapping[str, Any], job: Mapping[str, Any]) -> list[dict[str, str]]:
    """The chat prompt for one pair: the rubric (system), both entity texts (user)."""
    user = (
        "Member profile:\n"
        f"{render('profile', member)}\n\n"
        "Job posting:\n"
        f"{render('job', job)}\n\n"
        f"Grade this pair by the rubric. {ANSWER_FORMAT}"
    )
    return [
        {"role": "system", "content": f"{RUBRIC}\n\n{ANSWER_FORMAT}"},
        {"role": "user", "content": user},
    ]


def cache_key(model: str, messages: list[dict[str, str]], temperature: float) -> str:
    """sha256 of everything that determines the answer (model, prompt, temperature)."""
    payload = json.dumps({"model": model, "messages": messages, "temperature": temperature},
                         sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def parse_answer(content: Any) -> tuple[int, str]:
    """``'{"grade": 2, "rationale": "..."}'`` -> ``(2, "...")``; raises :class:`_Malformed`.

    Accepts the object wrapped in a Markdown code fence (some models add one even in
    JSON mode). The grade must be an integer 0-3 (``2.0`` is accepted, ``"2"``,
    ``true`` and ``2.5`` are not).
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
    rationale = obj.get("rationale", "")
    if not isinstance(rationale, str):
        rationale = json.dumps(rationale)
    return grade, _one_line(rationale)


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

    Files are written to a temporary file in the same folder and renamed into place,
    so a crash never leaves a half-written entry; an unreadable entry is a miss.
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
        p = self.path(key)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{key[:8]}-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(entry, f, ensure_ascii=False)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __len__(self) -> int:
        return sum(1 for _ in self.root.glob("*/*.json")) if self.root.exists() else 0


class LLMJudge(Judge):
    """Grades pairs with an LLM behind an OpenAI-compatible chat-completions API.

    ``POST {base_url}/chat/completions`` with ``model``, ``messages`` (rubric as
    system, the two entity texts as user), ``temperature`` and
    ``response_format={"type": "json_object"}``; the answer must be
    ``{"grade": 0-3, "rationale": "..."}``.

    - ``cfg.concurrency`` requests in flight (a thread pool over one ``httpx.Client``).
    - 429, 5xx, timeouts and connection errors are retried up to ``cfg.max_retries``
      times with exponential backoff and jitter; a ``Retry-After`` header is honoured
      (capped at ``max_retry_after_s``). Other 4xx fail at once (a bad model name
      or key does not get better by asking again).
    - Valid answers are cached on disk under ``cfg.cache_dir``, keyed by the sha256
      of (model, messages, temperature): a re-run sends no request. Malformed answers
      are not cached, so a re-run asks again.
    - A malformed answer counts in ``stats.malformed`` and yields
      ``Judgement(grade=None, error=...)``.

    ``backoff_base_s``, ``backoff_max_s`` and ``sleep`` exist for tests and tuning.
    """

    name = "llm"

    def __init__(self, cfg: LLMJudgeConfig, *, backoff_base_s: float = 1.0, backoff_max_s: float = 30.0,
                 max_retry_after_s: float = 120.0, sleep: Callable[[float], None] = time.sleep,
                 show_progress: bool = True):
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
        delay = min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt))
        return delay / 2 + random.uniform(0, delay / 2)  # "equal jitter"

    def grade_pairs(self, pairs: Sequence[Pair]) -> list[Judgement]:
        pairs = list(pairs)
        self._count(pairs=len(pairs))
        results: list[Judgement | None] = [None] * len(pairs)
        timeout = httpx.Timeout(self.cfg.timeout_s)
        limits = httpx.Limits(max_connections=self.cfg.concurrency)
        with httpx.Client(timeout=timeout, limits=limits, headers=self._headers()) as client, \
                ThreadPoolExecutor(max_workers=self.cfg.concurrency, thread_name_prefix="llm-judge") as pool, \
                tqdm(total=len(pairs), desc=f"LLM judge ({self.cfg.model})", unit="pair",
                     disable=not self.show_progress) as bar:
            # Render every prompt first: a bad record fails here, before any request is sent.
            prompts = [build_messages(m, j) for m, j in pairs]
            futures = {pool.submit(self._grade_one, client, msgs): i for i, msgs in enumerate(prompts)}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                bar.update(1)
        out = [r for r in results if r is not None]
        assert len(out) == len(pairs)
        self._count(graded=sum(r.ok for r in out))
        return out

    def _grade_one(self, client: httpx.Client, messages: list[dict[str, str]]) -> Judgement:
        key = cache_key(self.cfg.model, messages, self.cfg.temperature)
        cached = self.cache.get(key)
        if cached is not None:
            self._count(cache_hits=1)
            return Judgement(grade=int(cached["grade"]), rationale=str(cached.get("rationale", "")))

        body = {
            "model": self.cfg.model,
            "messages": messages,
            "temperature": self.cfg.temperature,
            "response_format": {"type": "json_object"},
        }
        try:
            content = self._post(client, body)
        except JudgeError as e:
            self._count(failed=1)
            return Judgement(grade=None, error=str(e))
        try:
            grade, rationale = parse_answer(content)
        except _Malformed as e:
            self._count(malformed=1)
            return Judgement(grade=None, error=f"malformed answer: {e}")
        self.cache.put(key, {"grade": grade, "rationale": rationale, "model": self.cfg.model,
                             "temperature": self.cfg.temperature, "content": content})
        return Judgement(grade=grade, rationale=rationale)

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


def make_judge(cfg: LabelConfig, **llm_options: Any) -> Judge:
    """The judge ``cfg.judge`` names: ``"rubric"`` or ``"llm"`` (``llm_options`` go to :class:`LLMJudge`)."""
    if cfg.judge == "rubric":
        return RubricJudge()
    if cfg.judge == "llm":
        return LLMJudge(cfg.llm, **llm_options)
    raise ValueError(f"labels.judge must be 'rubric' or 'llm', got {cfg.judge!r}")
