"""The foreign evaluation set: does a model match jobs and members it never saw the generator write?

The set (``jude/data/foreign``, built once by ``scripts/build_foreign_set.py`` from ESCO and O*NET, see its
README) holds job and profile entities from occupations, places and writing that
:mod:`jude.data.synthetic` never produces, and for each member four jobs: the ``match`` and three hard
negatives (``other_city``, ``under_qualified``, ``look_alike``). It is a guard: never trained on, and no
choice is made on it.

The figure is **pairwise accuracy**: for each member, the share of (match, negative) pairs where the match
has the higher cosine (a tie counts one half); overall it is the mean of the members' values, so every
member weighs the same and two models compare member by member (:func:`paired_foreign`, a paired bootstrap
over members, :func:`jude.evaluation.paired.paired_bootstrap`). Per negative kind it is the same over that
kind's pairs only. A model that cannot tell the jobs apart scores 0.5.

Embedding goes through callables (a list of entity dicts -> (N, D) L2-normalised array), so the set is
scored through whichever path a caller has: :func:`embedder_entity_fns` (an Embedder's
``encode_entities``) or :func:`engine_entity_fns` (the serving engine's ``render_entities`` + ``embed``
with the entity token budget, what ``POST /v1/entities/{job,profile}/embed`` runs). This module does not
import the serving layer; the engine is used by its methods.

``python -m jude.evaluation.foreign [MODEL]`` prints a model's figures (MODEL: 'minilm' or a model
directory; the embedder path).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, ValidationError

from jude.entities import TEMPLATE_FIELDS, entity_model, template_specs
from jude.evaluation.paired import mean_interval, paired_bootstrap

FOREIGN_DIR = Path(__file__).resolve().parents[1] / "data" / "foreign"
JOBS_FILE, PROFILES_FILE, PAIRS_FILE = "jobs.jsonl", "profiles.jsonl", "pairs.csv"
MATCH = "match"
NEGATIVE_KINDS = ("other_city", "under_qualified", "look_alike")
KINDS = (MATCH, *NEGATIVE_KINDS)
# The fields the job and profile templates read (the serving entities' fields), from the entity contract.
JOB_FIELDS, PROFILE_FIELDS = TEMPLATE_FIELDS["job"], TEMPLATE_FIELDS["profile"]

EmbedFn = Callable[[list[dict[str, Any]]], np.ndarray]


class ForeignSetError(ValueError):
    """A foreign-set file that does not hold what it should; the message names the file, row and field."""


@dataclass(frozen=True)
class ForeignSet:
    """The loaded set: entity records by id and the (member, job, kind, grade) pairs."""

    jobs: dict[str, dict[str, Any]]  # job_id -> record (entity fields + provenance)
    profiles: dict[str, dict[str, Any]]  # member_id -> record
    pairs: tuple[tuple[str, str, str, int], ...]  # (member_id, job_id, kind, grade)
    path: Path

    @property
    def members(self) -> list[str]:
        """Members with a match and at least one negative (the ones scored), sorted."""
        kinds: dict[str, set[str]] = {}
        for m, _, kind, _ in self.pairs:
            kinds.setdefault(m, set()).add(kind)
        return sorted(m for m, ks in kinds.items() if MATCH in ks and ks & set(NEGATIVE_KINDS))

    def job_entities(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        """The job entities (only the fields the job endpoint takes) of ``ids``, in order."""
        return [{f: self.jobs[i][f] for f in JOB_FIELDS} for i in ids]

    def profile_entities(self, ids: Sequence[str]) -> list[dict[str, Any]]:
        return [{f: self.profiles[i][f] for f in PROFILE_FIELDS} for i in ids]

    def summary(self) -> dict[str, Any]:
        kinds: dict[str, int] = {}
        for _, _, kind, _ in self.pairs:
            kinds[kind] = kinds.get(kind, 0) + 1
        return {"jobs": len(self.jobs), "profiles": len(self.profiles), "pairs": len(self.pairs), "kinds": kinds}


# ---- loading and validation ------------------------------------------------------------------
def _fail(where: str, row: int, fld: str | None, why: str, value: Any = None) -> None:
    at = f"row {row}" + (f", field '{fld}'" if fld else "")
    tail = f" (value: {value!r})" if value is not None else ""
    raise ForeignSetError(f"{where}: {at}: {why}{tail}")


def _text(where: str, row: int, rec: Mapping, fld: str) -> None:
    v = rec.get(fld)
    if not isinstance(v, str) or not v.strip():
        _fail(where, row, fld, "expected non-empty text", v)


def _skills(where: str, row: int, rec: Mapping, fld: str = "skills") -> None:
    v = rec.get(fld)
    if not isinstance(v, list) or not v or not all(isinstance(s, str) and s.strip() for s in v):
        _fail(where, row, fld, "expected a non-empty list of non-empty strings", v)


def _read_jsonl(path: Path, key: str, fields: Sequence[str], check: Callable[[str, int, dict], None]) -> dict:
    where = str(path)
    if not path.is_file():
        raise ForeignSetError(f"{where}: no such file")
    out: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for row, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                _fail(where, row, None, f"not valid JSON ({e.msg})")
            if not isinstance(rec, dict):
                _fail(where, row, None, "expected a JSON object", rec)
            for fld in (key, *fields):
                if fld not in rec:
                    _fail(where, row, fld, "missing")
            _text(where, row, rec, key)
            if rec[key] in out:
                _fail(where, row, key, "duplicate id", rec[key])
            check(where, row, rec)
            out[rec[key]] = rec
    if not out:
        raise ForeignSetError(f"{where}: no records")
    return out


class _Strict(BaseModel):
    """The foreign set's entities are files, not requests: no coercion ('yes' is not a boolean, 3.5 not a year)."""

    model_config = ConfigDict(strict=True, extra="ignore")


def _entity_check(entity_type: str) -> Callable[[str, int, dict], None]:
    """The check of one record of ``entity_type``: the entity contract's model of its template fields (types,
    bounds, vocabularies: :func:`jude.entities.entity_model`), strict, and, stricter than the contract, every text
    non-empty and the skills a non-empty list (a foreign record is read by a model, so every field must say
    something)."""
    model = entity_model(entity_type, base=_Strict, name=f"Foreign{entity_type.capitalize()}")
    specs = {s.name: s for s in template_specs(entity_type)}

    def check(where: str, row: int, rec: dict) -> None:
        try:
            model.model_validate(rec)
        except ValidationError as e:
            err = e.errors()[0]
            fld = str(err["loc"][0]) if err["loc"] else None
            expected = f"expected {specs[fld].expected}" if fld in specs else "invalid"
            _fail(where, row, fld, f"{expected} ({err['msg']})", rec.get(fld) if fld else None)
        for fld, spec in specs.items():
            if spec.kind == "list[str]":
                _skills(where, row, rec, fld)
            elif spec.kind == "str" and spec.choices is None:
                _text(where, row, rec, fld)

    return check


_check_job, _check_profile = _entity_check("job"), _entity_check("profile")


def _read_pairs(path: Path, jobs: Mapping, profiles: Mapping) -> tuple[tuple[str, str, str, int], ...]:
    where = str(path)
    if not path.is_file():
        raise ForeignSetError(f"{where}: no such file")
    want = ["member_id", "job_id", "kind", "grade"]
    out, seen = [], set()
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or any(c not in reader.fieldnames for c in want):
            raise ForeignSetError(f"{where}: header {reader.fieldnames}; expected columns {want}")
        for row, rec in enumerate(reader, start=1):  # row 1 = the first line after the header
            member, job, kind = (rec.get("member_id") or "").strip(), (rec.get("job_id") or "").strip(), rec.get("kind")
            if member not in profiles:
                _fail(where, row, "member_id", f"unknown member (not in {PROFILES_FILE})", rec.get("member_id"))
            if job not in jobs:
                _fail(where, row, "job_id", f"unknown job (not in {JOBS_FILE})", rec.get("job_id"))
            if kind not in KINDS:
                _fail(where, row, "kind", f"expected one of {list(KINDS)}", kind)
            try:
                grade = int(str(rec.get("grade")).strip())
            except ValueError:
                grade = -1
            if not 0 <= grade <= 3:
                _fail(where, row, "grade", "expected a whole number 0-3", rec.get("grade"))
            if (member, job) in seen:
                _fail(where, row, "job_id", f"duplicate pair for member {member}", job)
            seen.add((member, job))
            out.append((member, job, kind, grade))
    if not out:
        raise ForeignSetError(f"{where}: no pairs")
    return tuple(out)


def load_foreign_set(path: str | Path | None = None) -> ForeignSet:
    """The foreign set in ``path`` (default: the committed ``jude/data/foreign``), validated.

    Every job must be a valid job entity and every profile a valid profile entity (the entity contract's fields
    and bounds, :mod:`jude.entities`, without coercion: ``min_years`` 3.5 or ``"3"`` is refused), ids unique,
    every pair pointing at known ids with a known kind and a grade 0-3. Raises :class:`ForeignSetError` (a
    ``ValueError``) naming the file, the row (1-based; for ``pairs.csv`` counted after the header), the field
    and the value.
    """
    root = Path(path) if path is not None else FOREIGN_DIR
    jobs = _read_jsonl(root / JOBS_FILE, "job_id", JOB_FIELDS, _check_job)
    profiles = _read_jsonl(root / PROFILES_FILE, "member_id", PROFILE_FIELDS, _check_profile)
    pairs = _read_pairs(root / PAIRS_FILE, jobs, profiles)
    return ForeignSet(jobs=jobs, profiles=profiles, pairs=pairs, path=root)


# ---- scoring ----------------------------------------------------------------------------------
def _embed(fn: EmbedFn, records: list[dict[str, Any]], what: str) -> np.ndarray:
    emb = np.asarray(fn(records), dtype=np.float64)
    if emb.ndim != 2 or emb.shape[0] != len(records):
        raise ValueError(f"the {what} embedding function returned shape {emb.shape}; expected ({len(records)}, D)")
    if not np.isfinite(emb).all():
        raise ValueError(f"the {what} embedding function returned non-finite values")
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    return emb / np.maximum(norms, 1e-12)  # cosine whatever the caller's normalisation


def _win(match: float, negative: float) -> float:
    return 1.0 if match > negative else 0.5 if match == negative else 0.0


def score_foreign(
    embed_jobs: EmbedFn, embed_profiles: EmbedFn, fs: ForeignSet, resamples: int = 1000, seed: int = 0
) -> dict[str, Any]:
    """Pairwise accuracy of a model on ``fs``, overall and per negative kind, with 95 % intervals over members.

    ``embed_jobs`` / ``embed_profiles`` take a list of entity dicts (:attr:`ForeignSet.job_entities` fields)
    and return an (N, D) array (rows are L2-normalised here in any case). Returns::

        {"pairwise_accuracy", "ci_low", "ci_high", "members", "pairs",
         "per_kind": {kind: {"pairwise_accuracy", "ci_low", "ci_high", "members", "pairs"}},
         "per_member": {member_id: accuracy}, "per_member_kind": {kind: {member_id: accuracy}},
         "cosines": {(member_id, job_id): cosine}, "resamples", "seed"}
    """
    members = fs.members
    if not members:
        raise ValueError(f"{fs.path}: no member has both a match and a negative")
    member_set = set(members)
    job_ids = sorted({j for m, j, _, _ in fs.pairs if m in member_set})
    jobs = _embed(embed_jobs, fs.job_entities(job_ids), "job")  # (J, D)
    profiles = _embed(embed_profiles, fs.profile_entities(members), "profile")  # (M, D)
    if jobs.shape[1] != profiles.shape[1]:
        raise ValueError(f"job and profile embeddings differ in dimension: {jobs.shape[1]} vs {profiles.shape[1]}")
    cos = profiles @ jobs.T  # (M, J)
    mi, ji = {m: i for i, m in enumerate(members)}, {j: i for i, j in enumerate(job_ids)}
    cosines = {(m, j): float(cos[mi[m], ji[j]]) for m, j, _, _ in fs.pairs if m in member_set}

    by_member: dict[str, dict[str, list[str]]] = {m: {} for m in members}
    for m, j, kind, _ in fs.pairs:
        if m in member_set:
            by_member[m].setdefault(kind, []).append(j)
    per_kind_member: dict[str, dict[str, float]] = {k: {} for k in NEGATIVE_KINDS}
    per_member: dict[str, float] = {}
    n_pairs = {k: 0 for k in NEGATIVE_KINDS}
    for m in members:
        wins_all: list[float] = []
        for kind in NEGATIVE_KINDS:
            wins = [
                _win(cosines[(m, pos)], cosines[(m, neg)])
                for pos in by_member[m][MATCH]
                for neg in by_member[m].get(kind, [])
            ]
            if wins:
                per_kind_member[kind][m] = float(np.mean(wins))
                n_pairs[kind] += len(wins)
                wins_all += wins
        per_member[m] = float(np.mean(wins_all))

    acc, low, high = mean_interval(per_member, resamples=resamples, seed=seed)
    per_kind = {}
    for kind, values in per_kind_member.items():
        if values:
            k_acc, k_low, k_high = mean_interval(values, resamples=resamples, seed=seed)
            per_kind[kind] = {
                "pairwise_accuracy": k_acc,
                "ci_low": k_low,
                "ci_high": k_high,
                "members": len(values),
                "pairs": n_pairs[kind],
            }
    return {
        "pairwise_accuracy": acc,
        "ci_low": low,
        "ci_high": high,
        "members": len(members),
        "pairs": sum(n_pairs.values()),
        "per_kind": per_kind,
        "per_member": per_member,
        "per_member_kind": {k: v for k, v in per_kind_member.items() if v},
        "cosines": cosines,
        "resamples": resamples,
        "seed": seed,
    }


def paired_foreign(a: Mapping[str, Any], b: Mapping[str, Any], resamples: int = 1000, seed: int = 0) -> dict:
    """Model ``a`` minus model ``b`` (two :func:`score_foreign` results on the same set), paired over members.

    Returns ``{"delta", "ci_low", "ci_high", "members", "per_kind": {kind: {...}}}``: the difference of
    pairwise accuracy and its 95 % paired-bootstrap interval (the same resampled members for both models).
    """
    d = paired_bootstrap(a["per_member"], b["per_member"], resamples=resamples, seed=seed)
    out: dict[str, Any] = {"delta": d.delta, "ci_low": d.ci_low, "ci_high": d.ci_high, "members": d.queries}
    per_kind = {}
    for kind in NEGATIVE_KINDS:
        ka, kb = a["per_member_kind"].get(kind), b["per_member_kind"].get(kind)
        if ka and kb:
            dk = paired_bootstrap(ka, kb, resamples=resamples, seed=seed)
            per_kind[kind] = {"delta": dk.delta, "ci_low": dk.ci_low, "ci_high": dk.ci_high, "members": dk.queries}
    out["per_kind"] = per_kind
    return out


def flat_metrics(result: Mapping[str, Any], prefix: str = "foreign/") -> dict[str, float]:
    """The figures of a :func:`score_foreign` result as flat ``{name: float}`` (for logging)."""
    out = {f"{prefix}pairwise_accuracy": result["pairwise_accuracy"]}
    out[f"{prefix}pairwise_accuracy_ci_low"] = result["ci_low"]
    out[f"{prefix}pairwise_accuracy_ci_high"] = result["ci_high"]
    for kind, r in result["per_kind"].items():
        out[f"{prefix}{kind}/pairwise_accuracy"] = r["pairwise_accuracy"]
        out[f"{prefix}{kind}/pairwise_accuracy_ci_low"] = r["ci_low"]
        out[f"{prefix}{kind}/pairwise_accuracy_ci_high"] = r["ci_high"]
    return out


# ---- the two embedding paths ---------------------------------------------------------------------
def _normalise(emb: np.ndarray) -> np.ndarray:
    emb = np.asarray(emb, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def embedder_entity_fns(embedder: Any) -> tuple[EmbedFn, EmbedFn]:
    """(embed_jobs, embed_profiles) through a :class:`jude.modeling.embedder.Embedder`'s ``encode_entities``
    (its templates and per-entity token budgets)."""

    def jobs(records: list[dict[str, Any]]) -> np.ndarray:
        return _normalise(embedder.encode_entities("job", records))

    def profiles(records: list[dict[str, Any]]) -> np.ndarray:
        return _normalise(embedder.encode_entities("profile", records))

    return jobs, profiles


def engine_entity_fns(engine: Any) -> tuple[EmbedFn, EmbedFn]:
    """(embed_jobs, embed_profiles) through the serving ``InferenceEngine`` (``jude.serving.engine``): its
    ``render_entities`` and ``embed`` with ``entity_max_tokens``, as the entity endpoints run them."""

    def fn(entity_type: str) -> EmbedFn:
        def embed(records: list[dict[str, Any]]) -> np.ndarray:
            texts = engine.render_entities(entity_type, [dict(r) for r in records])
            return _normalise(engine.embed(texts, max_tokens=engine.entity_max_tokens(entity_type)))

        return embed

    return fn("job"), fn("profile")


def format_result(result: Mapping[str, Any], name: str = "model") -> str:
    """One line overall and one per kind: accuracy [95 % interval] (members)."""
    lines = [
        f"{name}: pairwise accuracy {result['pairwise_accuracy']:.3f} "
        f"[{result['ci_low']:.3f}, {result['ci_high']:.3f}] over {result['members']} members, {result['pairs']} pairs"
    ]
    for kind, r in result["per_kind"].items():
        interval = f"[{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
        lines.append(f"  {kind:<16} {r['pairwise_accuracy']:.3f} {interval} ({r['members']} members)")
    return "\n".join(lines)


# ---- the guard in every train run and in the promotion rule -----------------------------------------------
FOREIGN_PREFIX = "foreign/"


def foreign_metrics(
    models: Mapping[str, Any], fs: ForeignSet | None = None, base: str = "base", resamples: int = 1000
) -> dict[str, float]:
    """Every bi-encoder in ``models`` (name -> Embedder) scored on the foreign set, flat for MLflow.

    ``foreign/<name>/pairwise_accuracy`` (+ ``_ci_low``/``_ci_high``, and per negative kind), and for every model
    but ``base`` its paired lead over the base model: ``foreign/<name>_vs_base_delta`` (+ ``_ci_low``/``_ci_high``).
    The set is a guard, never a target: the train pipeline logs these, the promotion rule may veto by them
    (:func:`jude.evaluation.rule.foreign_veto`), and nothing is chosen on them.
    """
    fs = fs or load_foreign_set()
    scored = {name: score_foreign(*embedder_entity_fns(m), fs, resamples=resamples) for name, m in models.items()}
    out: dict[str, float] = {}
    for name, result in scored.items():
        out.update(flat_metrics(result, prefix=f"{FOREIGN_PREFIX}{name}/"))
        if name != base and base in scored:
            d = paired_foreign(result, scored[base], resamples=resamples)
            key = f"{FOREIGN_PREFIX}{name}_vs_base_delta"
            out.update({key: d["delta"], f"{key}_ci_low": d["ci_low"], f"{key}_ci_high": d["ci_high"]})
    return out


def main(argv: list[str] | None = None) -> None:
    import argparse

    from jude.env import apply_offline_env

    apply_offline_env()
    ap = argparse.ArgumentParser(description="Pairwise accuracy of a model on the foreign evaluation set.")
    ap.add_argument(
        "models",
        nargs="*",
        default=["minilm"],
        help="'minilm' or model directories (default: minilm); with "
        "several, each after the first is also compared with the first, paired over members",
    )
    ap.add_argument("--set", dest="path", default=None, help="the set's directory (default: jude/data/foreign)")
    ap.add_argument("--resamples", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None, help="also write every figure (and the per-member values) as JSON")
    args = ap.parse_args(argv)

    from jude.modeling.embedder import Embedder

    fs = load_foreign_set(args.path)
    results = {}
    for model in args.models or ["minilm"]:
        embedder = Embedder.load(model)
        results[model] = score_foreign(*embedder_entity_fns(embedder), fs, resamples=args.resamples, seed=args.seed)
        print(format_result(results[model], model))
    first, *others = list(results)
    for model in others:
        d = paired_foreign(results[model], results[first], resamples=args.resamples, seed=args.seed)
        kinds = ", ".join(
            f"{k} {v['delta']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}]" for k, v in d["per_kind"].items()
        )
        print(f"{model} - {first}: {d['delta']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] ({kinds})")
        results[model]["vs_first"] = d
    if args.out:
        import json

        keep = {m: {k: v for k, v in r.items() if k != "cosines"} for m, r in results.items()}
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"set": fs.summary(), "models": keep}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
