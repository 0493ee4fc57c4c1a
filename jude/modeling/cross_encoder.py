"""The cross-encoder teacher: one network reads a (member, job) pair together and scores it.

JUDE: "cross-encoders demonstrated superior performance" but cost one forward
pass per pair, so they cannot retrieve from millions of jobs. We use one offline
in two ways:

1. as a **teacher**: it scores the fine-tuned bi-encoder's top-k candidates of
   each training member (:func:`score_candidates`), and the bi-encoder is
   distilled towards those scores (``jude.training.distill``);
2. as a **reranker** in the evaluation table (:func:`rerank`), the upper bound
   the distilled student is measured against (``teacher/...`` metrics).

Model: the base family of the embedder (all-MiniLM-L6-v2 by default) with a
one-logit sequence-classification head (``AutoModelForSequenceClassification``,
``num_labels=1``; the pooler and head start random). Input is the pair
``[CLS] member text [SEP] job text [SEP]``, both rendered with
``jude.modeling.templates`` so the teacher reads exactly what the student reads.
The teacher is small and offline-only, so all its weights are fine-tuned (no LoRA).

Training it on the labelled pairs (groups of a positive and its negatives, the
negatives drawn from the fine-tuned bi-encoder's top-k first; ``bce`` or
``listwise`` loss) and checking it on the validation members before it teaches
is ``jude.training.teacher``; this module is the model: build, load, save,
score, rerank.

On disk a teacher is a Hugging Face model directory (``config.json``, weights,
tokenizer) plus ``jude_teacher.json`` (templates version and style, max length,
base model, training stats). ``sentence_transformers.CrossEncoder(path)`` loads
the same directory.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from jude.config import TeacherConfig
from jude.fsutils import atomic_directory
from jude.modeling import templates
from jude.modeling.model_dir import ModelLoadError, resolve_model_path

TEACHER_META_FILE = "jude_teacher.json"
SCORE_COLUMNS = ["member_id", "job_id", "teacher_score"]


class TeacherDataError(ValueError):
    """Training pairs or candidates the teacher cannot use; the message names what is wrong."""


@dataclass
class TeacherMeta:
    """What ``jude_teacher.json`` holds: everything needed to score exactly as in training."""

    base_model: str = "minilm"
    max_length: int = 256
    templates_version: str = templates.TEMPLATES_VERSION
    template_style: str = "plain"
    member_views: list[str] = field(default_factory=lambda: ["profile", "resume"])
    train: dict[str, Any] = field(default_factory=dict)


class CrossEncoderTeacher:
    """A sequence-pair scorer: ``score(member_texts, job_texts)`` -> one logit per pair (higher = better fit)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, meta: TeacherMeta):
        self.model = model
        self.tokenizer = tokenizer
        self.meta = meta

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_base(cls, cfg: TeacherConfig, template_style: str = "plain") -> CrossEncoderTeacher:
        """The base model named by ``cfg.base_model`` with a fresh one-logit head, for training."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = resolve_model_path(cfg.base_model)
        try:
            model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        except (OSError, ValueError) as e:
            raise ModelLoadError(
                f"teacher.base_model={cfg.base_model!r}: cannot load a model from {path!r}: {e}"
            ) from e
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
            model.config.pad_token_id = tokenizer.pad_token_id
        meta = TeacherMeta(
            base_model=cfg.base_model,
            max_length=cfg.max_length,
            template_style=template_style,
            member_views=list(cfg.member_views),
        )
        return cls(model, tokenizer, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> CrossEncoderTeacher:
        """Load a teacher saved by :meth:`save`; refuses one trained on other templates."""
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        meta_file = path / TEACHER_META_FILE
        if not (path / "config.json").exists() or not meta_file.exists():
            raise ModelLoadError(f"{path}: not a jude teacher directory (needs config.json and {TEACHER_META_FILE})")
        raw = json.loads(meta_file.read_text())
        known = set(TeacherMeta.__dataclass_fields__)
        meta = TeacherMeta(**{k: v for k, v in raw.items() if k in known})
        if meta.templates_version != templates.TEMPLATES_VERSION:
            raise ModelLoadError(
                f"{meta_file}: teacher was trained on templates {meta.templates_version!r}, but this code renders "
                f"{templates.TEMPLATES_VERSION!r}; retrain the teacher"
            )
        model = AutoModelForSequenceClassification.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        teacher = cls(model, tokenizer, meta)
        model.eval()
        if device:
            model.to(device)
        return teacher

    def save(self, path: str | os.PathLike) -> Path:
        """Write the HF directory + ``jude_teacher.json`` to a temporary sibling, then rename."""
        path = Path(path)
        with atomic_directory(path) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            (tmp / TEACHER_META_FILE).write_text(json.dumps(asdict(self.meta), indent=2, default=str))
        return path

    # ---- scoring -------------------------------------------------------------------
    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def render(self, entity_type: str, records: Any) -> list[str]:
        return templates.render_many(entity_type, records, style=self.meta.template_style)

    def logits(self, member_texts: Sequence[str], job_texts: Sequence[str]) -> torch.Tensor:
        """Differentiable scores of aligned pairs: (N,) logits (training)."""
        enc = self.tokenizer(
            list(member_texts),
            list(job_texts),
            padding=True,
            truncation="longest_first",
            max_length=self.meta.max_length,
            return_tensors="pt",
        )
        enc = {k: v.to(self.device) for k, v in enc.items()}
        return self.model(**enc).logits.squeeze(-1).float()  # (N, 1) -> (N,)

    @torch.inference_mode()
    def score(
        self, member_texts: Sequence[str], job_texts: Sequence[str], batch_size: int = 32, show_progress: bool = False
    ) -> np.ndarray:
        """Score aligned (member text, job text) pairs -> (N,) float32 logits, in input order.

        Pairs are sorted by length inside so each batch pads little.
        """
        if isinstance(member_texts, str) or isinstance(job_texts, str):
            raise TypeError("score takes two lists of texts, got a single string")
        if len(member_texts) != len(job_texts):
            raise ValueError(
                f"score: {len(member_texts)} member texts but {len(job_texts)} job texts; they must be aligned pairs"
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size must be > 0, got {batch_size}")
        was_training = self.model.training
        self.model.eval()
        n = len(member_texts)
        order = np.argsort([-(len(a) + len(b)) for a, b in zip(member_texts, job_texts)], kind="stable")
        out = np.zeros(n, dtype=np.float32)
        starts = range(0, n, batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc="teacher score", unit="batch")
        for s in starts:
            idx = order[s : s + batch_size]
            out[idx] = self.logits([member_texts[i] for i in idx], [job_texts[i] for i in idx]).cpu().numpy()
        if was_training:
            self.model.train()
        return out


# ============================================================================ offline scoring
def score_candidates(
    teacher: CrossEncoderTeacher,
    candidates: Mapping[str, Sequence[str]],
    jobs: pd.DataFrame,
    members: pd.DataFrame,
    member_view: str = "profile",
    batch_size: int = 32,
    show_progress: bool = True,
) -> pd.DataFrame:
    """Teacher scores of each member's candidate jobs -> DataFrame[member_id, job_id, teacher_score].

    ``candidates`` is member_id -> job ids, typically the fine-tuned bi-encoder's
    top-k per training member (``jude.evaluation.retrieval.top_k_candidates``).
    Rows come out in the candidates' order; the table is the distillation artifact.
    """
    if member_view not in templates.member_entity_types():
        raise ValueError(f"member_view must be one of {list(templates.member_entity_types())}, got {member_view!r}")
    member_rows = members.set_index("member_id", drop=False)
    job_ids = set(jobs["job_id"])
    unknown_m = [m for m in candidates if m not in member_rows.index]
    if unknown_m:
        raise TeacherDataError(f"candidates name unknown member(s) {unknown_m[:5]}")
    unknown_j = sorted({j for js in candidates.values() for j in js} - job_ids)
    if unknown_j:
        raise TeacherDataError(f"candidates name unknown job(s) {unknown_j[:5]}")
    mids = [m for m, js in candidates.items() for _ in js]
    jids = [j for js in candidates.values() for j in js]
    if not mids:
        return pd.DataFrame(
            {
                "member_id": pd.Series(dtype=str),
                "job_id": pd.Series(dtype=str),
                "teacher_score": pd.Series(dtype=np.float32),
            }
        )
    used = member_rows.loc[list(candidates)]
    m_text = dict(zip(used["member_id"], teacher.render(member_view, used)))
    j_rows = jobs[jobs["job_id"].isin(set(jids))]
    j_text = dict(zip(j_rows["job_id"], teacher.render("job", j_rows)))
    scores = teacher.score(
        [m_text[m] for m in mids], [j_text[j] for j in jids], batch_size=batch_size, show_progress=show_progress
    )
    return pd.DataFrame({"member_id": mids, "job_id": jids, "teacher_score": scores.astype(np.float32)})


def rerank(
    teacher: CrossEncoderTeacher,
    run: Mapping[str, Mapping[str, float]],
    eval_set: Any,
    k: int = 100,
    batch_size: int = 32,
    show_progress: bool = True,
) -> dict[str, dict[str, float]]:
    """Rescore each query's top-``k`` documents of ``run`` with the teacher -> a new ranx-style run.

    ``run`` is the bi-encoder's ``{member_id: {job_id: score}}`` (e.g.
    ``jude.evaluation.retrieval.retrieve``); ``eval_set`` the
    ``jude.evaluation.retrieval.EvalSet`` holding the query and job records
    (rendered as ``eval_set.query_entity`` and ``job``). The top-k get teacher
    logits; documents ranked below k keep their bi-encoder order underneath the
    reranked ones (so recall@100 is unchanged when k < 100).
    """
    if k <= 0:
        raise ValueError(f"rerank: k must be > 0, got {k}")
    missing_q = [q for q in run if q not in eval_set.queries]
    if missing_q:
        raise TeacherDataError(f"rerank: run names queries not in the evaluation set: {missing_q[:5]}")
    ranked = {q: sorted(docs, key=lambda d: -docs[d]) for q, docs in run.items()}
    missing_d = sorted({d for docs in ranked.values() for d in docs[:k]} - set(eval_set.corpus))
    if missing_d:
        raise TeacherDataError(f"rerank: run names jobs not in the evaluation corpus: {missing_d[:5]}")
    qids = [q for q, docs in ranked.items() for _ in docs[:k]]
    dids = [d for docs in ranked.values() for d in docs[:k]]
    q_text = dict(zip(ranked, teacher.render(eval_set.query_entity, [eval_set.queries[q] for q in ranked])))
    uniq = sorted(set(dids))
    d_text = dict(zip(uniq, teacher.render("job", [eval_set.corpus[d] for d in uniq])))
    scores = (
        teacher.score(
            [q_text[q] for q in qids], [d_text[d] for d in dids], batch_size=batch_size, show_progress=show_progress
        )
        if qids
        else np.zeros(0, np.float32)
    )
    out: dict[str, dict[str, float]] = defaultdict(dict)
    for q, d, s in zip(qids, dids, scores):
        out[q][d] = float(s)
    for q, docs in ranked.items():
        head = out[q]
        floor = min(head.values()) if head else 0.0
        for i, d in enumerate(docs[k:]):
            head[d] = floor - 1.0 - i  # below every reranked document, in the bi-encoder's order
    return {q: dict(out[q]) for q in ranked}
