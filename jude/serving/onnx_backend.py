"""The ONNX Runtime backend: the same model's forward pass, exported once to ONNX.

``jude serve --backend onnx`` (``ServeConfig.backend``) runs the backbone in
ONNX Runtime instead of eager PyTorch. The graph is exported from the model
directory's own weights the first time the server loads it
(:func:`ensure_onnx`) and stored beside the sentence-transformers files, where
sentence-transformers' ``backend="onnx"`` also looks:

    <model dir>/onnx/model.onnx        inputs input_ids, attention_mask (+ token_type_ids), output last_hidden_state
    <model dir>/onnx/jude_export.json  what it was exported from (weights' sizes and times, torch, opset)

A later load reuses it while ``jude_export.json`` still matches the weights; a
directory that cannot be written (a read-only image) gets its export under
``$JUDE_HOME/.jude/onnx/<key>/`` instead. Pooling stays in
:func:`jude.modeling.pooling.pool`, so both backends pool with the same code;
their embeddings agree to about 1e-7 (``tests/serving/test_onnx_backend.py``
holds them within 1e-5 cosine).

Why it can be faster on CPU than eager PyTorch: one ``session.run`` is one call
into C++ (the GIL is released once per forward, not once per operator, so the
event loop and the forward do not wait on each other), and ONNX Runtime fuses
attention and layer norms. The export uses the TorchScript exporter
(``torch.onnx.export(dynamo=False)``); sentence-transformers' own ONNX export
goes through optimum, which does not work with torch 2.13.

Needs the ``onnx`` extra (``pip install 'jude[onnx]'``: onnx, onnxruntime).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from jude.modeling.embedder import Embedder
from jude.modeling.model_dir import resolve_model_path
from jude.modeling.pooling import pool
from jude.serving.torch_backend import TorchBackend

ONNX_DIR = "onnx"
ONNX_FILE = "model.onnx"
EXPORT_RECORD = "jude_export.json"
OPSET = 17


class OnnxUnavailableError(RuntimeError):
    """backend='onnx' without onnx/onnxruntime installed, or a model the exporter cannot handle."""


def _require_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as e:
        raise OnnxUnavailableError(
            f"backend='onnx' needs onnx and onnxruntime ({e.name} is missing): pip install 'jude[onnx]'"
        ) from e


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fingerprint(model_dir: Path) -> dict[str, Any]:
    """What identifies the weights an export came from: each weight file's size and SHA-256.

    Content, not modification times: an export made at registration stays current after the
    registry's download (which writes new files with new times).
    """
    files = sorted(
        p
        for p in model_dir.iterdir()
        if p.is_file() and (p.suffix in (".safetensors", ".bin") or p.name == "config.json")
    )
    return {
        "weights": {p.name: [p.stat().st_size, _sha256(p)] for p in files},
        "torch": torch.__version__,
        "opset": OPSET,
    }


def _input_names(embedder: Embedder) -> list[str]:
    """The backbone inputs the graph takes: ids and mask, plus token types where the tokenizer makes them."""
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in getattr(embedder.tokenizer, "model_input_names", ()):
        names.append("token_type_ids")
    return names


class _Backbone(torch.nn.Module):
    """The backbone with positional inputs and one output (last_hidden_state), as the exporter wants it."""

    def __init__(self, backbone: torch.nn.Module, names: list[str]):
        super().__init__()
        self.backbone = backbone
        self.names = names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = self.backbone(**dict(zip(self.names, inputs)))
        return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]  # (B, T, H)


def export_onnx(embedder: Embedder, path: str | Path) -> Path:
    """Export ``embedder``'s backbone to ``path`` (one file, dynamic batch and sequence axes), atomically.

    The graph is written to a temporary sibling and renamed into place, so a
    reader sees no file or the whole file, never half of one.
    """
    _require_onnx()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = _input_names(embedder)
    device = embedder.device  # exported on the CPU, moved back after
    ids = torch.tensor([[1, 5, 6, 2], [1, 5, 2, 0]], dtype=torch.long)  # traced once; the values do not matter
    example = {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.zeros_like(ids)}
    module = _Backbone(embedder.backbone, names).eval().to("cpu")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's tracer warnings say nothing actionable here
            torch.onnx.export(
                module,
                tuple(example[n] for n in names),
                tmp,
                dynamo=False,
                input_names=names,
                output_names=["last_hidden_state"],
                dynamic_axes={n: {0: "batch", 1: "sequence"} for n in [*names, "last_hidden_state"]},
                opset_version=OPSET,
            )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; other users serving the same directory read it too
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, Exception) and not isinstance(e, OSError):
            raise OnnxUnavailableError(f"backend='onnx': this model could not be exported to ONNX: {e}") from e
        raise
    finally:
        embedder.backbone.to(device)
    return path


def _fallback_dir(model_dir: Path) -> Path:
    key = hashlib.sha256(str(model_dir.resolve()).encode()).hexdigest()[:16]
    return Path(os.environ.get("JUDE_HOME", os.getcwd())) / ".jude" / ONNX_DIR / key


def _read_record(onnx_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((onnx_dir / EXPORT_RECORD).read_text())
    except (OSError, ValueError):
        return None


def _current(onnx_dir: Path, fingerprint: dict[str, Any]) -> bool:
    if not (onnx_dir / ONNX_FILE).exists():
        return False
    record = _read_record(onnx_dir)
    return record is not None and {k: record.get(k) for k in fingerprint} == fingerprint


def ensure_onnx(embedder: Embedder, model_dir: str | Path) -> Path:
    """The ONNX export of the model in ``model_dir``: reused if current, otherwise exported now.

    Stored as ``<model_dir>/onnx/model.onnx`` with ``jude_export.json`` beside it;
    where ``model_dir`` is not writable, under ``$JUDE_HOME/.jude/onnx/<key>/``.
    """
    _require_onnx()
    from jude.fsutils import atomic_write_text

    model_dir = Path(resolve_model_path(str(model_dir)))
    fingerprint = _fingerprint(model_dir)
    candidates = [model_dir / ONNX_DIR, _fallback_dir(model_dir)]
    for onnx_dir in candidates:
        if _current(onnx_dir, fingerprint):
            return onnx_dir / ONNX_FILE
    errors = []
    for onnx_dir in candidates:
        try:
            path = export_onnx(embedder, onnx_dir / ONNX_FILE)
            atomic_write_text(onnx_dir / EXPORT_RECORD, json.dumps(fingerprint, indent=1))
            (onnx_dir / EXPORT_RECORD).chmod(0o644)
            return path
        except OSError as e:  # read-only: try the next place
            errors.append(f"{onnx_dir}: {e}")
    raise OnnxUnavailableError("backend='onnx': nowhere to write the ONNX export: " + "; ".join(errors))


# The export is used only where it is exact: pooled embeddings of these texts (1 to ~300 tokens, accents, CJK,
# padding) from ONNX Runtime and from torch must agree to this cosine.
MIN_COSINE = 0.9999
PROBE_TEXTS = [
    "Nurse",
    "Senior Python developer in Berlin. Skills: python, kubernetes, sql, kafka.",
    "naive cafe in Zurich, 東京 and São Paulo",
    "Data engineer building streaming pipelines with Kafka and Flink. " * 20,
    "Warehouse operations lead; night shifts; forklift licence; 10+ years",
]


def check_export(embedder: Embedder, onnx_path: str | Path, texts: list[str] | None = None) -> float:
    """The smallest cosine between ONNX Runtime's and torch's pooled embeddings of ``texts`` (the probes).

    The reference is the torch backend the server would run otherwise (:class:`TorchBackend`), on the same
    padded ids.
    """
    texts = texts or PROBE_TEXTS
    batch = embedder.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="np")
    ids, mask = batch["input_ids"].astype(np.int64), batch["attention_mask"].astype(np.int64)
    got = OnnxBackend(onnx_path, embedder.meta.pooling, threads=1).forward(ids, mask)  # (N, D)
    want = TorchBackend(embedder).forward(ids, mask)  # (N, D)
    cos = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1) + 1e-12)
    return float(cos.min())


def checked_onnx(embedder: Embedder, model_dir: str | Path) -> tuple[Path, float]:
    """:func:`ensure_onnx`, then the export checked against torch (once: the result is kept in its record).

    Raises :class:`OnnxUnavailableError` where the export is not exact (cosine below :data:`MIN_COSINE`).
    """
    from jude.fsutils import atomic_write_text

    path = ensure_onnx(embedder, model_dir)
    record = _read_record(path.parent) or {}
    cosine = record.get("check", {}).get("min_cosine")
    if cosine is None:
        cosine = check_export(embedder, path)
        record["check"] = {"min_cosine": cosine, "probes": len(PROBE_TEXTS), "threshold": MIN_COSINE}
        try:
            atomic_write_text(path.parent / EXPORT_RECORD, json.dumps(record, indent=1))
        except OSError:  # a read-only directory: the check is simply redone at the next load
            pass
    if cosine < MIN_COSINE:
        raise OnnxUnavailableError(
            f"the ONNX export at {path} is not exact: min cosine {cosine:.6f} against torch on the probe texts, "
            f"below {MIN_COSINE}"
        )
    return path, cosine


def export_for_serving(model_dir: str | Path) -> dict[str, Any]:
    """At registration: export the model in ``model_dir`` to ``<model_dir>/onnx/`` and check it, so the server's
    first load (``backend='auto'`` on CPU) does not pay for it. Returns what happened, for the run's metadata;
    never raises for a model that cannot be exported (the server then runs torch and says why)."""
    try:
        _require_onnx()
        embedder = Embedder.load(str(model_dir), device="cpu")
        if embedder.has_lora:
            embedder.backbone = embedder.backbone.merge_and_unload()
        path, cosine = checked_onnx(embedder, model_dir)
        return {"onnx": "exported", "path": str(path), "min_cosine": cosine}
    except OnnxUnavailableError as e:
        return {"onnx": "not used", "reason": str(e)}


class OnnxBackend:
    """ONNX Runtime over an exported backbone, pooled as the torch backend pools.

    ``threads``: the session's intra-op threads (None: one per core). The pool's
    threads do not spin between forwards, so an idle server leaves the CPU to the
    event loop. ``device="cuda"`` needs onnxruntime-gpu (the CUDA execution provider).
    """

    name = "onnx"

    def __init__(self, path: str | Path, pooling: str, threads: int | None = None, device: str = "cpu"):
        _require_onnx()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = ["CPUExecutionProvider"]
        if device == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise OnnxUnavailableError(
                    "backend='onnx' on cuda needs onnxruntime-gpu (the CUDA execution provider is not available)"
                )
            providers.insert(0, "CUDAExecutionProvider")
        self.path = Path(path)
        self.pooling = pooling
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        self.input_names = [i.name for i in self.session.get_inputs()]

    def forward(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in self.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        (hidden,) = self.session.run(None, feeds)  # (B, T, H) float32
        return pool(torch.from_numpy(hidden), torch.from_numpy(attention_mask), self.pooling).numpy()  # (B, D)
