"""What the MLflow registry says about the model and each version, in words a reader of the UI can act on.

- the registered model's description: what the model is, what each alias means, how to serve it;
- each version's description: its base model, the data it was trained and evaluated on, its headline
  metrics with the judgements they were scored on, and the ``jude serve`` command;
- each version's headline tags (``ndcg_at_10``, ``ndcg_at_10_vs_base``, ``judgements``, ...), so the
  versions list compares versions without opening their runs.

Plain functions of plain values (metrics, ``jude.json``, the held-out set): no MLflow here;
:func:`jude.registry.mlflow_registry.log_model_version` writes what they return.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from jude.config import DataConfig
from jude.evaluation.report import LABELLED_TRUTH, METRIC_LABELS, POOLED_TRUTH

HEADLINE = ("ndcg_at_10", "recall_at_100")  # the promotion rule's metrics: what decides champion


def truth_of(metrics: Mapping[str, float]) -> str:
    """What the unprefixed ``<variant>/...`` figures were scored on: pooled judgements when the evaluation also
    logged its ``labelled/...`` figures beside them, else the labelled judgements alone."""
    return POOLED_TRUTH if any(k.startswith("labelled/") for k in metrics) else LABELLED_TRUTH


def _finite(metrics: Mapping[str, float], key: str) -> float | None:
    v = metrics.get(key)
    return float(v) if v is not None and math.isfinite(float(v)) else None


def headline_tags(
    metrics: Mapping[str, float] | None, variant: str, eval_set: Mapping[str, Any] | None
) -> dict[str, str]:
    """Version tags with the registered variant's headline figures: nDCG@10 and recall@100 (4 decimals), the
    base model's, the nDCG@10 ratio, which judgements and how many test members. Empty without metrics."""
    metrics = metrics or {}
    ndcg = _finite(metrics, f"{variant}/ndcg_at_10")
    if ndcg is None:
        return {}
    tags = {"variant": variant, "judgements": truth_of(metrics)}
    for m in HEADLINE:
        for prefix, name in ((variant, m), ("base", f"base_{m}")):
            v = _finite(metrics, f"{prefix}/{m}")
            if v is not None:
                tags[name] = f"{v:.4f}"
    base = _finite(metrics, "base/ndcg_at_10")
    if base:
        tags["ndcg_at_10_vs_base"] = f"{ndcg / base:.2f}x"
    if eval_set and eval_set.get("queries"):
        tags["test_members"] = str(len(eval_set["queries"]))
    return tags


def headline_sentence(metrics: Mapping[str, float] | None, variant: str, eval_set: Mapping[str, Any] | None) -> str:
    """One sentence: the variant's nDCG@10 against the base model's, on which judgements and how many members."""
    metrics = metrics or {}
    tags = headline_tags(metrics, variant, eval_set)
    if not tags:
        return "No evaluation figures were logged with this version."
    members = f" ({tags['test_members']} held-out test members)" if "test_members" in tags else ""
    value = {f"{p}/{m}": _finite(metrics, f"{p}/{m}") for p in (variant, "base") for m in HEADLINE}
    out = f"nDCG@10 {value[f'{variant}/ndcg_at_10']:.3f}"
    if value["base/ndcg_at_10"] is not None:
        ratio = f", {tags['ndcg_at_10_vs_base']}" if "ndcg_at_10_vs_base" in tags else ""
        out += f" vs the base model's {value['base/ndcg_at_10']:.3f}{ratio}"
    out += f" on {tags['judgements']}{members}"
    if value[f"{variant}/recall_at_100"] is not None:
        out += f"; {METRIC_LABELS['recall_at_100']} {value[f'{variant}/recall_at_100']:.3f}"
        if value["base/recall_at_100"] is not None:
            out += f" (base {value['base/recall_at_100']:.3f})"
    return out + "."


def data_summary(data: DataConfig | Mapping[str, Any] | None) -> str:
    """Where the training data came from, in a phrase: the synthetic marketplace's size and seed, or the files."""
    if data is None:
        return ""
    cfg = data if isinstance(data, DataConfig) else DataConfig.model_validate(dict(data))
    if cfg.source == "files":
        return f"the tables under {cfg.path}"
    s = cfg.synthetic
    return f"the synthetic marketplace ({s.n_jobs} jobs, {s.n_members} members, {s.days} days, seed {s.seed})"


def version_description(
    name: str,
    version: str,
    meta: Mapping[str, Any],
    metrics: Mapping[str, float] | None,
    variant: str,
    eval_set: Mapping[str, Any] | None,
    data: str = "",
) -> str:
    """A version's description (MLflow renders it as Markdown): model, data, headline, how to serve it."""
    train = (meta.get("extra") or {}).get("train") or {}
    model = f"**{variant}** embedder from base model `{meta.get('base_model', '?')}`"
    shape = ", ".join(
        s
        for s in (
            f"{meta.get('pooling')} pooling" if meta.get("pooling") else "",
            f"{meta['dimension']}-d" if meta.get("dimension") else "",
            f"templates {meta['templates_version']}" if meta.get("templates_version") else "",
        )
        if s
    )
    lines = [f"{model}" + (f" ({shape})" if shape else "") + "."]
    trained = []
    if train.get("steps"):
        losses = train.get("losses")
        names = ", ".join(losses) if isinstance(losses, Mapping | list) else ""
        trained.append(f"{train['steps']} LoRA steps" + (f" ({names})" if names else ""))
    if train.get("positive_pairs"):
        trained.append(f"on {train['positive_pairs']} positive training pairs")
    if data or trained:
        lines.append("**Data**: " + " ".join([*trained, f"from {data}" if data else ""]).strip() + ".")
    lines.append("**Held-out evaluation**: " + headline_sentence(metrics, variant, eval_set))
    lines.append(
        "**Promotion**: the `promotion` tag says whether this version is champion and why; "
        "`python run.py --pipeline deploy` runs the gate for a challenger."
    )
    lines.append(
        f"**Serve it**: `jude serve --model models:/{name}/{version}` (this version), or "
        f"`jude serve --model models:/{name}@champion` (whichever version is champion)."
    )
    return "\n\n".join(lines)


def model_description(name: str) -> str:
    """The registered model's description: what it is, what the aliases mean, how to load and serve it."""
    return "\n\n".join(
        [
            "Two-tower job/member embedding model (JUDE, built by the jude project): one shared base model "
            "fine-tuned with LoRA embeds jobs, member profiles and resumes through per-entity templates; "
            "`jude.json` in each version records the base model, pooling, templates and token budgets.",
            "**Aliases**: `champion` is the version served; `challenger` is the latest trained, waiting for "
            "the promotion gate (`python run.py --pipeline deploy`); `previous` is the champion before the last "
            "promotion. Each version's description and tags give its base model, data and headline metrics.",
            f"**Serve the champion**: `jude serve --model models:/{name}@champion`. In Python: "
            f'`mlflow.pyfunc.load_model("models:/{name}@champion").predict(["senior data engineer"])`.',
        ]
    )
