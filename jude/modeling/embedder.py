"""The two-tower embedder: one shared base model, a pooling, per-entity templates.

Both towers (member side: profile or resume; job side) are the *same* network;
the entity template prefix tells it what it reads. The base can be an encoder
(MiniLM, BERT) or any Hugging Face decoder-only LM (Qwen2, Llama, Mistral), with
LoRA on the attention Q/K/V projections.

:meth:`Embedder.save` writes a sentence-transformers directory (LoRA merged),
the adapter and ``jude.json``; the format itself, readable without torch, is
``jude.modeling.model_format``. Pooling is ``jude.modeling.pooling``.

Scale switches (GPU set-ups; see docs/gpu.md) live here too, because they are
properties of the model rather than of a training loop:
``enable_gradient_checkpointing()``, ``apply_liger()``, ``autocast()``, and the
flash-attention check in ``from_base``; :meth:`Embedder.trainable` applies the
ones a ``ScaleConfig`` switches on, for both training loops.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from jude.config import POOLINGS, LoRAConfig, ModelConfig, ScaleConfig, check_scale
from jude.fsutils import atomic_directory
from jude.modeling import templates
from jude.modeling.model_format import (
    ADAPTER_DIR,
    META_FILE,
    EmbedderMeta,
    ModelLoadError,
    is_decoder_config,
    meta_from_sentence_transformers,
    resolve_model_path,
    write_sentence_transformers_config,
)
from jude.modeling.pooling import pool

# Padded tokens per forward pass of pre-tokenised texts (Embedder.embed_token_ids). Training: small
# enough that a length-sorted chunk pads little (texts of 40-160 tokens), large enough for efficient
# matrix products: on MiniLM (CPU, batch 32 + 32 negatives) 2048 took 4% less time per step than 1024,
# 11% less than 4096 or one forward. Encoding (no graph): the old 64 texts x 128 tokens.
TRAIN_BATCH_TOKENS = 2048
ENCODE_BATCH_TOKENS = 8192

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


class MissingAcceleratorPackage(ModelLoadError):
    """A GPU switch (flash-attention 2, Liger kernels) is on but its package or a GPU is missing."""


def load_tokenizer(path: str | os.PathLike) -> Any:
    """The tokenizer saved at ``path``, exactly as saved.

    transformers 5's ``AutoTokenizer`` picks the tokenizer class from the model
    type when ``tokenizer_config.json`` names only a generic fast tokenizer, and
    that class rebuilds the pre-tokenizer (e.g. Qwen2's byte-level BPE) over a
    vocabulary it was not made for. A generic ``tokenizer.json`` is therefore
    loaded with ``PreTrainedTokenizerFast``, which keeps it as is; everything else
    (real hub models name their class) goes through ``AutoTokenizer``.
    """
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    path = Path(path)
    tok_cfg = path / "tokenizer_config.json"
    if tok_cfg.exists() and (path / "tokenizer.json").exists():
        cls = json.loads(tok_cfg.read_text()).get("tokenizer_class")
        if cls in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            return PreTrainedTokenizerFast.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path)


def check_flash_attention(cfg: ModelConfig) -> None:
    """flash_attention_2 needs the ``flash-attn`` package, a CUDA GPU and 16-bit weights."""
    if cfg.attn_implementation != "flash_attention_2":
        return
    import importlib.util

    if importlib.util.find_spec("flash_attn") is None:
        raise MissingAcceleratorPackage(
            "model.attn_implementation='flash_attention_2' needs the flash-attn package on a CUDA machine "
            "(pip install flash-attn --no-build-isolation); set it to null or 'sdpa' elsewhere"
        )
    if not torch.cuda.is_available():
        raise MissingAcceleratorPackage(
            "model.attn_implementation='flash_attention_2' needs a CUDA GPU, and none is visible"
        )
    if cfg.dtype == "float32":
        raise ValueError(
            "model.attn_implementation='flash_attention_2' needs model.dtype bfloat16 or float16, got 'float32'"
        )


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
    def from_base(cls, cfg: ModelConfig) -> Embedder:
        """Load the base model named by ``cfg.base_model`` for fine-tuning."""
        from transformers import AutoConfig, AutoModel

        path = resolve_model_path(cfg.base_model)
        try:
            hf_cfg = AutoConfig.from_pretrained(path)
        except (OSError, ValueError) as e:
            raise ModelLoadError(
                f"model.base_model={cfg.base_model!r}: cannot load a model config from {path!r}: {e}"
            ) from e
        is_decoder = is_decoder_config(hf_cfg)
        if is_decoder and cfg.pooling != "lasttoken" and cfg.pooling != "mean":
            raise ValueError(
                f"model.pooling={cfg.pooling!r} makes no sense for a decoder-only model; use 'lasttoken' or 'mean'"
            )
        check_flash_attention(cfg)
        kwargs: dict[str, Any] = {"dtype": getattr(torch, cfg.dtype)}
        if cfg.attn_implementation:
            kwargs["attn_implementation"] = cfg.attn_implementation
        backbone = AutoModel.from_pretrained(path, **kwargs)
        if is_decoder and hasattr(backbone.config, "use_cache"):
            backbone.config.use_cache = False  # embeddings never generate; a KV cache only costs memory
        tokenizer = load_tokenizer(path)
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
    def trainable(cls, model_cfg: ModelConfig, lora_cfg: LoRAConfig, scale: ScaleConfig | None = None) -> Embedder:
        """The base model ready to fine-tune: Liger kernels, LoRA, gradient checkpointing as ``scale`` says.

        The one recipe both training loops use (``jude.training.trainer`` and
        ``jude.training.hf_trainer``). Switches that contradict the model section
        (``jude.config.check_scale``) are refused before any weights load. Liger
        patches the base modules before LoRA wraps them; checkpointing goes on
        last, on the wrapped model.
        """
        scale = scale or ScaleConfig()
        check_scale(model_cfg, scale)
        embedder = cls.from_base(model_cfg)
        if scale.liger:
            embedder.apply_liger()
        embedder.add_lora(lora_cfg)
        if scale.gradient_checkpointing:
            embedder.enable_gradient_checkpointing()
        return embedder

    @classmethod
    def load(cls, path: str | os.PathLike, device: str | None = None) -> Embedder:
        """Load a saved jude model, or any sentence-transformers / HF encoder directory.

        Without a ``jude.json`` the pooling comes from ``1_Pooling/config.json``
        (mean if absent) and the entity templates take their defaults.
        """
        from transformers import AutoConfig, AutoModel

        path = Path(resolve_model_path(str(path)))
        if not (path / "config.json").exists():
            raise ModelLoadError(f"{path}: not a model directory (no config.json)")
        meta_file = path / META_FILE
        hf_cfg = AutoConfig.from_pretrained(path)
        if meta_file.exists():
            meta = EmbedderMeta.from_dict(json.loads(meta_file.read_text()))
        else:
            meta = meta_from_sentence_transformers(path, hf_cfg)
        backbone = AutoModel.from_pretrained(path)
        tokenizer = load_tokenizer(path)
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
        cfg = LoraConfig(
            r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout, target_modules=targets, bias="none"
        )
        self.backbone = get_peft_model(self.backbone, cfg)
        self.meta.extra["lora"] = {"r": lora.r, "alpha": lora.alpha, "dropout": lora.dropout, "target_modules": targets}

    @property
    def has_lora(self) -> bool:
        return hasattr(self.backbone, "peft_config")

    def trainable_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ---- scale switches (docs/gpu.md) ------------------------------------------------
    @property
    def is_decoder(self) -> bool:
        """A decoder-only base (Qwen2, Llama, Mistral, ...): left padding, EOS for last-token pooling."""
        return self.meta.padding_side == "left"

    def enable_gradient_checkpointing(self) -> None:
        """Recompute each layer's activations in the backward pass instead of storing them.

        Activation memory drops from O(layers x tokens x hidden) to about one layer's
        worth, for roughly a third more compute; what makes long inputs and big
        batches fit on a 7B model. The non-reentrant variant is used: it works when
        the inputs carry no gradient (LoRA on a frozen base) and under DDP/DeepSpeed.
        The loss and gradients are the same as without it.
        """
        base = self.backbone.get_base_model() if self.has_lora else self.backbone
        if getattr(base, "supports_gradient_checkpointing", True) is False:
            raise ValueError(f"model type {self.meta.model_type!r} does not support gradient checkpointing")
        if hasattr(base, "activation_checkpointing_enable"):  # transformers >= 5
            base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        cfg = getattr(base, "config", None)
        if cfg is not None and hasattr(cfg, "use_cache"):
            cfg.use_cache = False  # a KV cache and checkpointing do not mix
        self.meta.extra["gradient_checkpointing"] = True

    @property
    def gradient_checkpointing(self) -> bool:
        base = self.backbone.get_base_model() if self.has_lora else self.backbone
        for name in ("is_activation_checkpointing", "is_gradient_checkpointing"):  # transformers 5 renamed it
            if hasattr(type(base), name):
                return bool(getattr(base, name))
        return False

    def apply_liger(self) -> None:
        """Swap in Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU) for this decoder. GPU only.

        Cuts activation memory and speeds up training of Llama/Qwen2/Mistral-family
        models; the maths is unchanged. The cross-entropy kernels are left off: an
        embedder has no language-model head. Raises ``MissingAcceleratorPackage``
        when ``liger-kernel`` is not installed or no GPU is visible, and
        ``ValueError`` for a model family Liger does not cover.
        """
        try:
            import liger_kernel.transformers as liger
        except ImportError as e:
            raise MissingAcceleratorPackage(
                "scale.liger=true needs the liger-kernel package on a CUDA machine (pip install liger-kernel); "
                f"set scale.liger to false elsewhere ({e})"
            ) from e
        if not torch.cuda.is_available():
            raise MissingAcceleratorPackage("scale.liger=true needs a CUDA GPU (Triton kernels), and none is visible")
        apply = getattr(liger, f"apply_liger_kernel_to_{self.meta.model_type}", None)
        if apply is None:
            raise ValueError(f"scale.liger: Liger has no kernels for model type {self.meta.model_type!r}")
        base = self.backbone.get_base_model() if self.has_lora else self.backbone
        import inspect

        wanted = {
            "rope": True,
            "rms_norm": True,
            "swiglu": True,
            "cross_entropy": False,
            "fused_linear_cross_entropy": False,
            "model": base,
        }
        params = inspect.signature(apply).parameters
        apply(**{k: v for k, v in wanted.items() if k in params})
        self.meta.extra["liger"] = True

    def autocast(self, enabled: bool = True, dtype: str = "bfloat16") -> Any:
        """Mixed precision for a forward pass: ``with embedder.autocast(): loss = ...``.

        Weights stay in their dtype (fp32 master weights for the optimiser), matmuls
        run in ``dtype``. bf16 autocast also works on CPU (slower, but it runs, so it
        is tested there); fp16 needs a GPU and a gradient scaler, bf16 needs neither.
        """
        if dtype not in ("bfloat16", "float16"):
            raise ValueError(f"autocast dtype must be 'bfloat16' or 'float16', got {dtype!r}")
        return torch.autocast(device_type=self.device.type, dtype=getattr(torch, dtype), enabled=enabled)

    # ---- encoding ------------------------------------------------------------------
    @property
    def dimension(self) -> int:
        return self.meta.dimension

    @property
    def device(self) -> torch.device:
        return next(self.backbone.parameters()).device

    def tokenize(self, texts: list[str], max_length: int, to_device: bool = True) -> dict[str, torch.Tensor]:
        """Tokenise a batch: (B, T) ids and mask, padded on the model's side.

        Decoders with last-token pooling get the EOS token appended, so the pooled
        state has read the whole text. A text cut at ``max_length`` still ends in
        EOS: the tokenizer truncates the text before the EOS is added back.
        ``to_device=False`` keeps the tensors on the CPU (data collators).
        """
        eos = self.tokenizer.eos_token
        if self.meta.append_eos and eos:  # an EOS already in the text would be doubled
            texts = [t[: -len(eos)] if t.endswith(eos) else t for t in texts]
        enc = self.tokenizer(
            texts,
            padding=True,
            truncation=True,
            return_tensors="pt",
            max_length=max_length - 1 if self._eos_appended else max_length,
            add_special_tokens=True,
        )
        if self._eos_appended:
            enc = self._append_eos(enc)
        if not to_device:
            return dict(enc)
        return {k: v.to(self.device) for k, v in enc.items()}

    @property
    def appends_eos(self) -> bool:
        """Whether jude puts the EOS id after each text's tokens itself (last-token pooling, and the tokenizer
        does not end texts with EOS). Every path that tokenises for this model (the serving engine too)
        must agree, or the pooled position would read a different token."""
        return self._eos_appended

    @property
    def _eos_appended(self) -> bool:
        """Whether ``tokenize`` adds EOS itself (not when the tokenizer already ends every text with it)."""
        if not (self.meta.append_eos and self.tokenizer.eos_token_id is not None):
            return False
        if not hasattr(self, "_tokenizer_adds_eos"):
            ids = self.tokenizer("a")["input_ids"]
            self._tokenizer_adds_eos = bool(ids) and ids[-1] == self.tokenizer.eos_token_id
        return not self._tokenizer_adds_eos

    def _append_eos(self, enc: Any) -> dict[str, torch.Tensor]:
        """Put EOS after the last real token of every row, keeping the padding side. (B, T) -> (B, T+1)."""
        ids, mask = enc["input_ids"], enc["attention_mask"]  # (B, T)
        B = ids.shape[0]
        eos = self.tokenizer.eos_token_id
        if self.meta.padding_side == "left":
            # every row's real tokens end at the last column: EOS is one more column for all
            ids = torch.cat([ids, torch.full((B, 1), eos, dtype=ids.dtype)], dim=1)  # (B, T+1)
            mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype)], dim=1)
        else:
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
            ids = torch.cat([ids, torch.full((B, 1), pad, dtype=ids.dtype)], dim=1)  # (B, T+1)
            mask = torch.cat([mask, torch.zeros((B, 1), dtype=mask.dtype)], dim=1)
            rows, lengths = torch.arange(B), mask.sum(1)  # EOS goes right after each row's last real token
            ids[rows, lengths], mask[rows, lengths] = eos, 1
        out = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in enc:
            out["token_type_ids"] = torch.cat([enc["token_type_ids"], enc["token_type_ids"][:, -1:]], dim=1)
        return out

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

    # ---- pre-tokenised paths (training) ---------------------------------------------
    def token_ids(self, texts: Sequence[str], max_length: int) -> list[list[int]]:
        """Tokenise without padding: one id list per text, the rows :meth:`tokenize` would pad.

        The trainer tokenises every text once and keeps these lists across steps and
        curriculum phases; :meth:`pad_token_ids` turns any subset back into the batch
        ``tokenize`` gives (same truncation, special tokens and EOS).
        """
        eos = self.tokenizer.eos_token
        if self.meta.append_eos and eos:  # as in tokenize: an EOS already in the text would be doubled
            texts = [t[: -len(eos)] if t.endswith(eos) else t for t in texts]
        appended = self._eos_appended
        ids = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=max_length - 1 if appended else max_length,
            add_special_tokens=True,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        if appended:
            eos_id = self.tokenizer.eos_token_id
            ids = [row + [eos_id] for row in ids]
        return ids

    def pad_token_ids(self, ids: Sequence[Sequence[int]], to_device: bool = True) -> dict[str, torch.Tensor]:
        """Pad id lists from :meth:`token_ids` into a batch: (B, T) tensors, as :meth:`tokenize` returns.

        Padding goes on the model's side with the tokenizer's pad id; ``token_type_ids``
        (all zeros: one segment per text) are there when the tokenizer produces them.
        """
        if not len(ids) or any(len(row) == 0 for row in ids):
            raise ValueError("pad_token_ids needs at least one text and no empty id list")
        B, T = len(ids), max(len(row) for row in ids)
        input_ids = torch.full((B, T), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros((B, T), dtype=torch.long)
        left = self.meta.padding_side == "left"
        for i, row in enumerate(ids):
            cols = slice(T - len(row), T) if left else slice(0, len(row))
            input_ids[i, cols] = torch.as_tensor(row, dtype=torch.long)
            mask[i, cols] = 1
        enc = {"input_ids": input_ids, "attention_mask": mask}
        if "token_type_ids" in self.tokenizer.model_input_names:
            enc["token_type_ids"] = torch.zeros_like(input_ids)
        if not to_device:
            return enc
        return {k: v.to(self.device) for k, v in enc.items()}

    def embed_token_ids(
        self, ids: Sequence[Sequence[int]], max_batch_tokens: int | None = TRAIN_BATCH_TOKENS
    ) -> torch.Tensor:
        """Differentiable (N, D) embedding of pre-tokenised texts, in input order.

        The texts are sorted by length and forwarded in chunks of at most
        ``max_batch_tokens`` padded tokens (rows x the chunk's longest text; one
        text at least), so each chunk pads to the longest of similar lengths
        instead of the longest in the batch. Padding is masked out, so the
        embeddings are those of one padded forward up to float rounding (dropout
        draws differ). ``None``: one forward, padded to the longest text.
        """
        if max_batch_tokens is not None and max_batch_tokens <= 0:
            raise ValueError(f"max_batch_tokens must be > 0 or None, got {max_batch_tokens}")
        if max_batch_tokens is None:
            return self(self.pad_token_ids(ids))
        lengths = np.fromiter((len(row) for row in ids), dtype=np.int64, count=len(ids))
        order = np.argsort(lengths, kind="stable")  # shortest first
        chunks: list[list[int]] = [[]]
        for i in order.tolist():
            if chunks[-1] and (len(chunks[-1]) + 1) * int(lengths[i]) > max_batch_tokens:
                chunks.append([])
            chunks[-1].append(i)
        if len(chunks) == 1:
            return self(self.pad_token_ids(ids))
        emb = torch.cat([self(self.pad_token_ids([ids[i] for i in chunk])) for chunk in chunks])  # (N, D), sorted
        inverse = torch.empty(len(ids), dtype=torch.long)
        inverse[torch.as_tensor(order)] = torch.arange(len(ids))
        return emb[inverse.to(emb.device)]

    @torch.inference_mode()
    def encode_token_ids(self, ids: Sequence[Sequence[int]], max_batch_tokens: int = ENCODE_BATCH_TOKENS) -> np.ndarray:
        """Embed pre-tokenised texts without a graph -> (N, D) float32, in input order (eval mode inside)."""
        was_training = self.training
        self.eval()
        try:
            return self.embed_token_ids(ids, max_batch_tokens).float().cpu().numpy()
        finally:
            if was_training:
                self.train()

    @torch.inference_mode()
    def encode(
        self,
        texts: list[str],
        max_length: int | None = None,
        batch_size: int = 64,
        show_progress: bool = False,
        desc: str = "encode",
    ) -> np.ndarray:
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
            idx = order[s : s + batch_size]
            emb = self.embed_texts([texts[i] for i in idx], max_length)
            out[idx] = emb.float().cpu().numpy()
        if was_training:
            self.train()
        return out

    def render(self, entity_type: str, records: Any) -> list[str]:
        return templates.render_many(entity_type, records, style=self.meta.template_style)

    def encode_entities(
        self, entity_type: str, records: Any, batch_size: int = 64, show_progress: bool = False
    ) -> np.ndarray:
        """Render entities with the model's templates and embed them."""
        texts = self.render(entity_type, records)
        return self.encode(
            texts,
            self.meta.max_lengths[entity_type],
            batch_size=batch_size,
            show_progress=show_progress,
            desc=f"encode {entity_type}s",
        )

    # ---- saving --------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write a sentence-transformers directory (LoRA merged) + adapter/ + jude.json.

        Written to a temporary sibling and renamed, so a crash never leaves half a model.
        """
        path = Path(path)
        with atomic_directory(path) as tmp:
            backbone = self.backbone
            if self.has_lora:
                self.backbone.save_pretrained(tmp / ADAPTER_DIR)
                import copy

                backbone = copy.deepcopy(self.backbone).merge_and_unload()
            backbone.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            write_sentence_transformers_config(tmp, self.meta)
            (tmp / META_FILE).write_text(json.dumps(asdict(self.meta), indent=2, default=str))
        return path
