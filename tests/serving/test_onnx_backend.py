"""The ONNX Runtime backend: exported beside the model, reused, and equal to the torch backend."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from pydantic import ValidationError

from jude.config import ServeConfig
from jude.serving import onnx_backend
from jude.serving.onnx_backend import EXPORT_RECORD, OnnxUnavailableError, ensure_onnx
from tests.serving.conftest import app_client

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed (pip install 'jude[onnx]')")
pytest.importorskip("onnx", reason="the onnx extra is not installed (pip install 'jude[onnx]')")

# Varied on purpose: lengths from 3 to over 256 tokens (truncated), accents, CJK, emoji, padding in every chunk.
TEXTS = [
    "Nurse",
    "UX researcher",
    "Senior Python developer in Berlin. Skills: python, kubernetes, sql, kafka.",
    "Frontend engineer (React, TypeScript), remote OK, four-day week",
    "naïve café in Zürich, 東京 and São Paulo 🙂",
    "Data engineer building streaming pipelines with Kafka and Flink. " * 12,
    "Warehouse operations lead; night shifts; forklift licence; 10+ years",
    "Registered nurse, ICU, Lyon",
] * 4


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    """A writable copy of the packaged MiniLM directory (its files linked, not copied)."""
    from jude.modeling.model_dir import packaged_minilm_path

    src = packaged_minilm_path()
    dst = tmp_path_factory.mktemp("minilm-onnx")
    for f in src.iterdir():
        if f.name != onnx_backend.ONNX_DIR:
            (dst / f.name).symlink_to(f)
    return dst


@pytest.fixture(scope="session")
def onnx_engine(model_dir):
    """The serving engine with backend='onnx': the first load exports the graph into model_dir/onnx/."""
    from jude.serving.engine import load_engine

    return load_engine(str(model_dir), backend="onnx")


def test_onnx_embeddings_equal_torch_within_1e_5_cosine(onnx_engine, engine):
    got = onnx_engine.embed(TEXTS)
    want = engine.embed(TEXTS)
    cosine = (got * want).sum(1) / (np.linalg.norm(got, axis=1) * np.linalg.norm(want, axis=1))
    assert onnx_engine.info.backend == "onnx"
    assert cosine.min() >= 1 - 1e-5, f"min cosine {cosine.min():.8f}"
    raw_got, raw_want = onnx_engine.embed(TEXTS, normalize=False), engine.embed(TEXTS, normalize=False)
    np.testing.assert_allclose(raw_got, raw_want, atol=1e-4)  # pooled, before normalisation


def test_the_export_is_stored_beside_the_model_and_reused(onnx_engine, model_dir, monkeypatch):
    onnx_dir = model_dir / "onnx"
    assert (onnx_dir / "model.onnx").stat().st_size > 1_000_000
    record = json.loads((onnx_dir / EXPORT_RECORD).read_text())
    assert "model.safetensors" in record["weights"]

    def no_export(*args, **kwargs):
        raise AssertionError("a current export must be reused, not redone")

    monkeypatch.setattr(onnx_backend, "export_onnx", no_export)
    assert ensure_onnx(onnx_engine.embedder, model_dir) == onnx_dir / "model.onnx"


def _fake_export(calls):
    def export(embedder, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"graph")
        calls.append(path)
        return path

    return export


def test_an_export_from_other_weights_is_redone(minilm, tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"weights v1")
    calls: list = []
    monkeypatch.setattr(onnx_backend, "export_onnx", _fake_export(calls))
    first = ensure_onnx(minilm, model)
    assert ensure_onnx(minilm, model) == first and len(calls) == 1, "the same weights: reused"
    (model / "model.safetensors").write_bytes(b"weights v2, retrained")
    assert ensure_onnx(minilm, model) == first and len(calls) == 2, "new weights: exported again"


def test_a_read_only_model_directory_exports_under_jude_home(minilm, tmp_path, monkeypatch):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    calls: list = []
    fake = _fake_export(calls)

    def export(embedder, path):
        if model in path.parents:
            raise PermissionError(13, "Read-only file system", str(path))
        return fake(embedder, path)

    monkeypatch.setattr(onnx_backend, "export_onnx", export)
    monkeypatch.setenv("JUDE_HOME", str(tmp_path / "home"))
    path = ensure_onnx(minilm, model)
    assert (tmp_path / "home" / ".jude" / "onnx") in path.parents and path.read_bytes() == b"graph"
    assert ensure_onnx(minilm, model) == path and len(calls) == 1, "found again at the next load"


@pytest.mark.anyio
async def test_the_server_answers_the_same_with_either_backend(onnx_engine, engine):
    body = {"input": TEXTS[:8]}
    async with app_client(onnx_engine) as c:
        got = (await c.post("/v1/embeddings", json=body)).json()
    async with app_client(engine) as c:
        want = (await c.post("/v1/embeddings", json=body)).json()
    np.testing.assert_allclose([d["embedding"] for d in got["data"]], [d["embedding"] for d in want["data"]], atol=1e-5)
    assert got["usage"] == want["usage"]


def test_without_onnxruntime_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(OnnxUnavailableError, match=r"pip install 'jude\[onnx\]'"):
        onnx_backend._require_onnx()


def test_backend_and_dtype_are_validated(minilm):
    from jude.serving.engine import make_backend

    with pytest.raises(ValidationError, match="backend"):
        ServeConfig(backend="tensorrt")
    with pytest.raises(ValueError, match="dtype='bfloat16' is for backend='torch'"):
        make_backend(minilm, "minilm", backend="onnx", dtype="bfloat16")


def test_auto_runs_the_checked_onnx_export_on_cpu(model_dir, onnx_engine):
    """#31 item 1: ONNX Runtime is the CPU default where it is installed and exact; /info says why."""
    from jude.serving.engine import load_engine

    auto = load_engine(str(model_dir), backend="auto")
    assert auto.info.backend == "onnx"
    assert "export checked against torch: min cosine" in auto.info.extra["backend_choice"]
    record = json.loads((model_dir / "onnx" / EXPORT_RECORD).read_text())
    assert record["check"]["min_cosine"] >= onnx_backend.MIN_COSINE
    assert ServeConfig().backend == "auto"


def test_auto_falls_back_to_torch_where_the_export_is_not_exact(minilm, tmp_path, monkeypatch):
    from jude.serving.engine import make_backend

    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    monkeypatch.setattr(onnx_backend, "export_onnx", _fake_export([]))
    monkeypatch.setattr(onnx_backend, "check_export", lambda embedder, path, texts=None: 0.97)
    backend = make_backend(minilm, str(model), backend="auto")
    assert backend.name == "torch"
    assert "not exact: min cosine 0.970000" in backend.choice
    with pytest.raises(OnnxUnavailableError, match="not exact"):
        onnx_backend.checked_onnx(minilm, model)


def test_registration_exports_and_checks_the_model_so_the_first_request_does_not_pay(tmp_path):
    from jude.modeling.model_dir import packaged_minilm_path

    model = tmp_path / "registered"
    model.mkdir()
    for f in packaged_minilm_path().iterdir():
        if f.name != onnx_backend.ONNX_DIR:
            (model / f.name).symlink_to(f)
    done = onnx_backend.export_for_serving(model)
    assert done["onnx"] == "exported" and done["min_cosine"] >= onnx_backend.MIN_COSINE, done
    assert (model / "onnx" / "model.onnx").exists()
    # a copy with new file times (as the registry's download writes it) still finds the export current
    copy = tmp_path / "downloaded"
    copy.mkdir()
    for f in model.iterdir():
        if f.is_dir():
            (copy / f.name).mkdir()
            for g in f.iterdir():
                (copy / f.name / g.name).write_bytes(g.read_bytes())
        else:
            (copy / f.name).write_bytes(f.read_bytes())
    assert onnx_backend._current(copy / "onnx", onnx_backend._fingerprint(copy))
